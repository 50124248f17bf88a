"""The reading of the documentation's examples (the integration tier runs them): every curl
example is found and shows what it prints, and the comparison means what it says."""

from pathlib import Path

from tests.doc_examples import DOCUMENTS, bind, examples_in, fill_in, mismatch

ID = "0123456789abcdef0123456789abcdef"


def test_every_curl_example_of_the_pages_shows_what_it_prints() -> None:
    commands = [
        command
        for document in DOCUMENTS
        for example in examples_in(document)
        for command in example.commands
        if command.is_curl
    ]
    assert len(commands) >= 15
    assert [command.where for command in commands if not command.shown] == []


def test_a_json_block_right_after_an_example_is_its_output(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```sh\ncurl -F file=@a.mp3 http://h/v1/jobs\n# {}\ncurl http://h/v1/jobs/3f0c…\n```\n\n"
        '```json\n{"job_id": "3f0c…"}\n```\n',
        encoding="utf-8",
    )
    [example] = examples_in(page)
    sent, read = example.commands
    assert (sent.sends, read.sends) == (True, False)
    assert read.shown == ['{"job_id": "3f0c…"}']


def test_made_up_ids_stand_for_the_job_that_first_printed_them() -> None:
    jobs: dict[str, str] = {}
    bind('{"job_id":"3f0c…","status":"queued"}', f'{{"job_id":"{ID}"}}', jobs)
    assert fill_in("curl http://h/v1/jobs/3f0c9a6e2b8e4d0f9a1c7b5e4d3c2b1a", jobs).endswith(ID)
    assert fill_in("/v1/jobs/3f0c…/events", jobs) == f"/v1/jobs/{ID}/events"


def test_an_ellipsis_stands_for_anything_and_the_rest_must_be_there_in_order() -> None:
    printed = '{"job_id":"x","status":"done","owner":null,"text":"Hello there."}'
    assert mismatch('{"job_id":"x","status":"done",…,"text":"Hello there."}', printed) is None
    assert mismatch('{"status":"done", "text": "Hello there."}', printed) is not None
    assert mismatch('…"text":"Hello   there."…', printed) is None
    assert mismatch('…"text":"Hello there."…"status"…', printed) is not None
