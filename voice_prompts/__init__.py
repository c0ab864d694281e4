"""Voice prompts: the catalogue of wording, the recorded audio, and the lookup the call flow uses.

Only catalogue.py and library.py are used while serving; build.py, audio.py and cli.py are
offline tooling (espeak-ng, pydub) and are never imported on the request path.
"""
