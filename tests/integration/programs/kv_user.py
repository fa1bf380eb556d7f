"""A user's own Locust class for the key-value server (tests/integration/programs/kv_server.py),
as a user writes one: plain Locust, nothing of the harness but `self.request_id`."""

from locust import HttpUser, task


class KvUser(HttpUser):
    @task(4)
    def put(self) -> None:
        self.client.post("/put", json={"key": self.request_id, "value": "v"})

    @task(1)
    def nowhere(self) -> None:
        self.client.post("/nowhere", json={})  # the server answers 400: rejected
