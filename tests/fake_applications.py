"""In-memory ApplicationRepository and SecretStore that behave like the DynamoDB and Secrets
Manager adapters (same errors for collisions, missing applications and api key changes)."""
from __future__ import annotations

from datetime import datetime

from chalicelib.domain.application import Application
from chalicelib.service.applications import ApplicationNotFound


class InMemoryApplicationRepository:
    def __init__(self, applications: list[Application] | None = None) -> None:
        self._by_id: dict[str, Application] = {}
        self._id_by_key: dict[str, str] = {}
        for application in applications or ():
            self.add(application)

    def get(self, application_id: str) -> Application | None:
        return self._by_id.get(application_id)

    def get_by_api_key(self, api_key: str) -> Application | None:
        application_id = self._id_by_key.get(api_key)
        return self._by_id[application_id] if application_id else None

    def add(self, application: Application) -> None:
        if application.application_id in self._by_id or application.api_key in self._id_by_key:
            raise ValueError("application id or api key already exists")
        self._by_id[application.application_id] = application
        self._id_by_key[application.api_key] = application.application_id

    def update(self, application: Application) -> None:
        stored = self._by_id.get(application.application_id)
        if stored is None:
            raise ApplicationNotFound(application.application_id)
        if stored.api_key != application.api_key:
            raise ValueError("an application's api key cannot change")
        self._by_id[application.application_id] = application

    def list(self) -> list[Application]:
        return sorted(self._by_id.values(), key=lambda a: (a.created_at, a.application_id))


class InMemorySecretStore:
    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})

    def get(self, name: str) -> str:
        return self.values[name]

    def put(self, name: str, value: str) -> None:
        self.values[name] = value


class InMemoryTokenUses:
    """The TokenUses port in memory; shares its contract tests with DynamoDB."""

    def __init__(self) -> None:
        #: (application_id, jti) -> until when the use is kept.
        self.recorded: dict[tuple[str, str], datetime] = {}

    def first_use(self, application_id: str, jti: str, until: datetime) -> bool:
        if (application_id, jti) in self.recorded:
            return False
        self.recorded[(application_id, jti)] = until
        return True
