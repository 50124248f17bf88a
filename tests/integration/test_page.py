"""The web page and the docs in a real Chromium (Debian's, driven by Playwright), on the running
services. Screenshots go to var/screenshots/ for a person to look at."""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import srt
from playwright.async_api import (
    Browser,
    Locator,
    Page,
    Route,
    ViewportSize,
    async_playwright,
    expect,
)

from bench.speech import mfa_recording
from tests import media
from tests.integration.conftest import ONLY_WHISPER, RunningSystem, stack_fixture
from tests.media_server import media_server

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
KEY = "page-s3cret"
PHONE = ViewportSize(width=390, height=844)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        launched_browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        yield launched_browser
        await launched_browser.close()


# Short pieces, so that a recording of a few tens of seconds shows its progress.
site = stack_fixture(
    "page",
    piece_seconds=8,
    recognizer_slots=1,
    engines=ONLY_WHISPER,
    fetch_allowed_hosts="127.0.0.1",
)


keyed_site = stack_fixture("page-keys", services=("gateway",), api_keys=KEY)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(accept_downloads=True)
    opened = await context.new_page()
    yield opened
    await context.close()


async def only_the_service(page: Page, base_url: str) -> list[str]:
    """Refuse every request that leaves the service, and note what was refused."""
    refused: list[str] = []

    async def guard(route: Route) -> None:
        if route.request.url.startswith(base_url):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    await page.route("**/*", guard)
    return refused


async def uploaded(page: Page, base_url: str, recording: Path) -> Locator:
    """The card of `recording`, just uploaded on the page."""
    await page.goto(base_url)
    await expect(page.locator("#engine option")).not_to_have_count(0)
    await page.set_input_files("#files", recording)
    await page.get_by_role("button", name="Transcribe", exact=True).click()
    return page.locator("#work .card").first


async def test_a_recording_is_followed_then_played_from_the_segment_clicked(
    site: RunningSystem, page: Page, long_speech: Path
) -> None:
    refused = await only_the_service(page, site.base_url)
    card = await uploaded(page, site.base_url, long_speech)
    statuses: set[str] = set()
    while (status := await card.locator(".status").inner_text()) not in ("Done", "Failed"):
        statuses.add(status)
        await page.wait_for_timeout(50)
    await page.screenshot(path=SCREENSHOTS / "page-done.png", full_page=True)
    segments = card.locator(".segments button")
    words = media.words_of(" ".join(await segments.all_inner_texts()))
    chosen = segments.nth(2)
    start = float(await chosen.get_attribute("data-start") or "nan")
    await chosen.click()
    position = await card.locator("audio").evaluate("audio => audio.currentTime")
    async with page.expect_download() as download_info:
        await card.get_by_role("link", name="srt").click()
    subtitles = list(srt.parse((await (await download_info.value).path()).read_text()))
    await page.locator("#refresh").click()
    listed = await page.locator("#recent tbody").inner_text()
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=SCREENSHOTS / "page-phone.png", full_page=True)
    assert status == "Done"
    assert any(status.startswith("Transcribing") and "%" in status for status in statuses), statuses
    # In an 8-s piece tiny.en hears "finance team" or "fine and steam" by a hair (it changes
    # with where the piece is cut); the other words of the first sentence, and words of three
    # later ones, it hears whatever the cut.
    heard_whatever_the_cut = {*media.EXPECTED_WORDS} - {"finance"} | {
        "weather",
        "railway",
        "library",
    }
    assert heard_whatever_the_cut <= words, words
    assert abs(position - start) < 0.5
    assert len(subtitles) >= 3
    assert subtitles[0].content
    assert long_speech.name in listed
    assert refused == []


async def test_words_the_engine_was_unsure_of_are_dimmed(site: RunningSystem, page: Page) -> None:
    # A real voice with a cold, on which tiny.en is unsure of a few words.
    card = await uploaded(page, site.base_url, mfa_recording("cold_corpus"))
    await expect(card.locator(".status")).to_have_text("Done", timeout=110_000)
    unsure = card.locator(".segments .unsure")
    await unsure.first.scroll_into_view_if_needed()
    await page.screenshot(path=SCREENSHOTS / "page-unsure.png", full_page=True)
    assert await unsure.count() >= 1
    titles = [await word.get_attribute("title") or "" for word in await unsure.all()]
    assert all(title.startswith("Unsure (") for title in titles), titles
    color = await unsure.first.evaluate("word => getComputedStyle(word).color")
    plain = await card.locator(".segments button span").first.evaluate(
        "text => getComputedStyle(text).color"
    )
    assert color != plain


async def test_words_are_shown_as_the_transcript_spells_them(
    site: RunningSystem, page: Page, tmp_path: Path
) -> None:
    # tiny.en writes "$12.50" and "10%" but times them as the words "$12", ".50", "10", "%".
    said = "It costs twelve dollars and fifty cents, about ten percent more."
    recording = media.to_mp3(media.speak(said, tmp_path / "price.wav"), tmp_path / "price.mp3")
    card = await uploaded(page, site.base_url, recording)
    await expect(card.locator(".status")).to_have_text("Done", timeout=60_000)
    await page.screenshot(path=SCREENSHOTS / "page-price.png", full_page=True)
    shown = await card.locator(".segments button > span").all_inner_texts()
    async with page.expect_download() as download_info:
        await card.get_by_role("link", name="json").click()
    transcript = json.loads((await (await download_info.value).path()).read_text())
    texts = [segment["text"] for segment in transcript["segments"]]
    spaced = [
        " ".join(word["word"] for word in segment["words"]) for segment in transcript["segments"]
    ]
    assert spaced != texts, texts  # the premise: a space between each two words misspells them
    assert shown == texts


async def test_the_engine_list_says_which_model_each_engine_runs(
    site: RunningSystem, page: Page
) -> None:
    await page.goto(site.base_url)
    option = page.locator("#engine option[value='faster-whisper']")
    await expect(option).to_have_text(re.compile(r"faster-whisper .*tiny\.en.*fast"))


async def test_a_text_file_is_refused_in_words(
    site: RunningSystem, page: Page, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.mp3"
    notes.write_text("These are meeting notes, not a recording.\n" * 20)
    await page.goto(site.base_url)
    await expect(page.locator("#engine option")).not_to_have_count(0)
    await page.set_input_files("#files", notes)
    await page.get_by_role("button", name="Transcribe", exact=True).click()
    problem = page.locator("#work .card .problem")
    await expect(problem).to_be_visible()
    await page.screenshot(path=SCREENSHOTS / "page-refused.png", full_page=True)
    assert "refused" in await problem.inner_text()
    assert "not audio or video" in await problem.inner_text()


async def test_a_recording_given_by_its_address_is_fetched_and_transcribed(
    site: RunningSystem, page: Page, clips: dict[str, Path]
) -> None:
    with media_server(clips["mp3"].read_bytes()) as server:
        await page.goto(site.base_url)
        await expect(page.locator("#engine option")).not_to_have_count(0)
        for host in ("localhost", "127.0.0.1"):  # a name the service may not fetch from, then one
            await page.get_by_label("Or the address of a recording").fill(
                server.at("/media/standup%20notes.mp3", host=host)
            )
            await page.get_by_role("button", name="Transcribe", exact=True).click()
        fetched, refused = page.locator("#work .card").nth(0), page.locator("#work .card").nth(1)
        await expect(fetched.locator(".status")).to_have_text("Done", timeout=60_000)
        await expect(refused.locator(".status")).to_have_text("Failed")
        await page.screenshot(path=SCREENSHOTS / "page-url.png", full_page=True)
        words = media.words_of(await fetched.locator(".segments").inner_text())
        assert await fetched.locator(".name").inner_text() == "standup notes.mp3"
        assert set(media.EXPECTED_WORDS) <= words, words
        assert "localhost is not a public address" in await refused.locator(".problem").inner_text()
        assert await fetched.locator("audio").get_attribute("src") == server.at(
            "/media/standup%20notes.mp3"
        )
        assert await page.get_by_label("Or the address of a recording").input_value() == ""
        assert server.paths == ["/media/standup%20notes.mp3"] * 2  # the service's, the player's


async def test_with_keys_the_page_asks_for_one_and_explains_a_wrong_one(
    keyed_site: RunningSystem, page: Page
) -> None:
    await page.goto(keyed_site.base_url)
    form = page.locator("#key-form")
    await expect(form).to_be_visible()
    asked = await page.locator("#key-why").inner_text()
    await page.get_by_label("Key").fill("not-the-key")
    await page.get_by_role("button", name="Use this key").click()
    await expect(page.locator("#key-why")).to_contain_text("refused")
    await page.screenshot(path=SCREENSHOTS / "page-wrong-key.png", full_page=True)
    await page.get_by_label("Key").fill(KEY)
    await page.get_by_role("button", name="Use this key").click()
    await expect(form).to_be_hidden()
    await expect(page.locator("#engine option")).not_to_have_count(0)
    stored = await page.evaluate("localStorage.getItem('stt-api-key')")
    assert "asks for an API key" in asked
    assert stored == KEY


async def test_the_docs_render_with_nothing_but_the_service(
    keyed_site: RunningSystem, page: Page
) -> None:
    refused = await only_the_service(page, keyed_site.base_url)
    await page.goto(f"{keyed_site.base_url}/docs")
    operations = page.locator(".opblock-summary-path")
    await expect(operations.first).to_be_visible()
    paths = set(await operations.all_inner_texts())
    await page.screenshot(path=SCREENSHOTS / "docs.png")
    asked_elsewhere_by_swagger = list(refused)
    # ReDoc's script asks a CDN for its "powered by" logo; refused, the page renders all the same.
    await page.goto(f"{keyed_site.base_url}/redoc")
    upload = page.get_by_role(
        "heading", name="Upload a media file, or give its URL, for transcription"
    )
    await expect(upload).to_be_visible(timeout=20_000)  # ReDoc renders slowly on a busy machine
    await page.screenshot(path=SCREENSHOTS / "redoc.png")
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/audio/transcriptions"} <= {
        path.replace("\u200b", "") for path in paths
    }
    assert asked_elsewhere_by_swagger == []
