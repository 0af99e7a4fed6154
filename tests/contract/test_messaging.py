"""The messaging contracts against the in-memory publisher and notifier."""

from collections.abc import Sequence

import pytest

from openticket.adapters.memory import MemoryEventPublisher, MemoryNotifier
from openticket.application.ports.messaging import EventPublisher, Notifier
from openticket.domain.shared import DomainEvent
from openticket.testing.contracts import EventPublisherContract, NotifierContract


class TestMemoryEventPublisher(EventPublisherContract):
    @pytest.fixture
    def publisher(self) -> MemoryEventPublisher:
        return MemoryEventPublisher()

    async def published_events(self, publisher: EventPublisher) -> Sequence[DomainEvent]:
        assert isinstance(publisher, MemoryEventPublisher)
        return list(publisher.published)


class TestMemoryNotifier(NotifierContract):
    @pytest.fixture
    def notifier(self) -> Notifier:
        return MemoryNotifier()
