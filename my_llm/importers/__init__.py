"""Importers: other tools' exports turned into records of a namespace (today: ChatGPT's data export)."""
