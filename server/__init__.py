"""my-llm-server: a REST API above my_llm (users and API keys, an OpenAI-compatible logging proxy, history,
usage). ``my_llm`` never imports this package; this package imports only my_llm's public faces.

Start it with ``my-llm-server serve``; build the app in-process with :func:`server.app.create_app`.
"""
