"""The gateway's routes, one module per resource: jobs, transcripts (and a job's event stream),
tutorial, OpenAI, models, live and health; deps holds what they ask for. The paths open without
an API key are declared in gateway.auth.PUBLIC_PATHS alone."""
