"""MkDocs hook: publishes the benchmark charts of bench/results with the documentation.

The pages link to them as ../bench/results/NAME.png, which also works when the Markdown is read
in the repository; the charts stay where the benchmarks write them, with their data.
"""

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel

RESULTS = Path("bench") / "results"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    for chart in sorted((root / RESULTS).glob("*.png")):
        published = (RESULTS / chart.name).as_posix()
        files.append(
            File(
                f"../{published}",
                config.docs_dir,
                config.site_dir,
                config.use_directory_urls,
                dest_uri=published,
                inclusion=InclusionLevel.INCLUDED,
            )
        )
    return files
