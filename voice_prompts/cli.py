"""`prompts build` and `prompts import`: make the recorded prompts, offline.

Plain click commands: they need no app context or database, so they work under
`flask --app app prompts …` once registered and as `python -m voice_prompts.cli …`.
pydub is imported only when a command runs, never when the app merely registers the group.
"""
from __future__ import annotations

from pathlib import Path

import click

from voice_prompts import catalogue
from voice_prompts.library import AUDIO_DIR, MODES, Playback, PromptLibrary

audio_dir_option = click.option(
    "--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=AUDIO_DIR,
    show_default=True, help="Where the recordings and manifest.json live.")
service_option = click.option(
    "--service", envvar="SERVICE_NAME", default=catalogue.DEFAULT_SERVICE, show_default=True,
    show_envvar=True, callback=lambda ctx, param, value: value.strip() or catalogue.DEFAULT_SERVICE,
    help="The service name the greeting speaks (stripped, as the server's settings do).")
service_cy_option = click.option(
    "--service-cy", envvar="SERVICE_NAME_CY", default="", show_envvar=True,
    callback=lambda ctx, param, value: value.strip() or None,
    help="The service name the Welsh greeting speaks; default: the --service name.")


@click.group("prompts", help="Recorded voice prompts: synthesise them with espeak-ng or import your own.")
def prompts_group():
    pass


@prompts_group.command("build")
@service_option
@click.option("--language", "languages", multiple=True, type=click.Choice(catalogue.LANGUAGES),
              help="Repeatable; default: every language.")
@click.option("--prompt", "names", multiple=True, type=click.Choice(catalogue.PROMPT_NAMES),
              help="Repeatable; default: every prompt.")
@click.option("--replace-imported", is_flag=True, help="Also replace fresh recordings imported by an operator.")
@service_cy_option
@audio_dir_option
def build(service, languages, names, replace_imported, service_cy, audio_dir):
    """Synthesise prompts with espeak-ng and record them in the manifest."""
    from voice_prompts.build import PromptError, build_all

    try:
        entries = build_all(service, audio_dir, languages or catalogue.LANGUAGES,
                            names or catalogue.PROMPT_NAMES, replace_imported=replace_imported,
                            service_cy=service_cy)
    except PromptError as exc:
        raise click.ClickException(exc.message) from None
    for entry in entries:
        note = "kept (imported, still fresh)" if entry.source == "imported" else entry.source
        click.echo(_summary(entry, note))


@prompts_group.command("import")
@click.argument("name")
@click.argument("language")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@service_option
@service_cy_option
@audio_dir_option
def import_(name, language, file, service, service_cy, audio_dir):
    """Use your own recording (WAV, or MP3 with ffmpeg) of prompt NAME in LANGUAGE."""
    from voice_prompts.build import PromptError, import_recording

    try:
        entry = import_recording(name, language, file, service, audio_dir, service_cy=service_cy)
    except PromptError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(_summary(entry, "imported"))


@prompts_group.command("status")
@service_option
@service_cy_option
@click.option("--voice-prompts", "mode", envvar="VOICE_PROMPTS", default="auto", show_default=True,
              show_envvar=True, type=click.Choice(MODES, case_sensitive=False),
              help="Which recordings calls play, as the server reads it.")
@click.option("--provider", envvar="TELEPHONY_PROVIDER", default="simulator", show_default=True, show_envvar=True,
              type=click.Choice(("twilio", "simulator")), help="Where calls go, as the server reads it.")
@audio_dir_option
def status(service, service_cy, mode, provider, audio_dir):
    """Say, for each prompt, whether calls play a recording or speak it with <Say>, and why."""
    library = PromptLibrary(audio_dir, service, service_cy)
    playback = Playback(mode.lower(), provider)
    played = 0
    for language in catalogue.LANGUAGES:
        voice = catalogue.say_voice(language)[0]
        for name in catalogue.PROMPT_NAMES:
            recording = library.recording(name, language)
            if recording is not None and playback.plays(recording):
                played += 1
                click.echo(f"{language}/{name}: {recording.source} recording ({recording.duration:.2f} s)")
                continue
            why = ("no fresh recording" if recording is None else
                   f"VOICE_PROMPTS={playback.mode} with TELEPHONY_PROVIDER={provider} does not play "
                   f"{recording.source} recordings")
            words = catalogue.text(name, language, library.service_for(language))
            click.echo(f"{language}/{name}: <Say> {voice}, {why} ({words})")
    total = len(catalogue.LANGUAGES) * len(catalogue.PROMPT_NAMES)
    fresh = total - len(library.stale())
    click.echo(f"{played} of {total} prompts play a recording ({fresh} recorded and fresh) "
               f"with VOICE_PROMPTS={playback.mode}, TELEPHONY_PROVIDER={provider}, service {service!r}.")


def _summary(entry, note: str) -> str:
    return (f"{entry.relative_path:<28} {entry.duration:5.2f} s  {entry.size / 1024:5.1f} KB  "
            f"{note}: {entry.text}")


if __name__ == "__main__":
    prompts_group(prog_name="python -m voice_prompts.cli")
