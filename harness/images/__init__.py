"""Container images for the Docker backend: the base image (`base.py`), the harness's own
builds of the reference system (`catalog.py`) and building them with the Docker SDK
(`build.py`), tagged by content so an unchanged build is reused in seconds."""
