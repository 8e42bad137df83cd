"""Webhooks: signed inbound events from EHRs and signed outbound deliveries.

Inbound (EHR -> HoloVitals):
    inbound.receive(session, connection_id=..., body=..., headers=..., settings=...)
        authenticate, store ids only, 202; `services.event_jobs` turns it into a sync job
    inbound_config.set_inbound_auth(session, connection=..., data=..., actor=...)
    stats.inbound_stats(session)

Outbound (HoloVitals -> subscribers):
    emit(session, event_type, refs) -> [delivery ids]    # called by other services
    subscriptions.create / update / delete / rotate_secret
    actions.redeliver / send_test
    delivery.deliver(delivery_id, expected_attempts)     # the RQ job
    EVENT_TYPES: the event types (data, deletes, sync and conflicts, and alert.raised)
"""

from ...models import InboundEvent, WebhookDelivery, WebhookSubscription
from .. import changes
from .emit import emit
from .events import EVENT_GROUPS, EVENT_TYPES, TEST_EVENT, InvalidEvent

# Open dashboards follow these rows: subscriptions' health, the delivery log, inbound counts.
for _model in (WebhookSubscription, WebhookDelivery, InboundEvent):
    changes.follow(_model, changes.WEBHOOKS)

__all__ = ["EVENT_GROUPS", "EVENT_TYPES", "TEST_EVENT", "InvalidEvent", "emit"]
