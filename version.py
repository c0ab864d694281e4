"""The release's version: one minor version per issue landed (0.16.0 is issue 16's), 0.x until the
API and the schema promise compatibility. CHANGELOG.md says what each release brings and how to
upgrade to it; bump both together."""

__version__ = "0.16.0"
