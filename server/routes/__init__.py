"""The API's routes, one module per resource, mounted under ``/v1`` by :func:`server.app.create_app`."""
