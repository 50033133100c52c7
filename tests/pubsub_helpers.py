"""Pulling from the real emulator in tests."""

import time


def subscribe(project: str, topic_path: str, name: str):
    """Create a subscription on ``topic_path`` (the topic must exist); returns (subscriber, path)."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(project, name)
    subscriber.create_subscription(request={"name": subscription, "topic": topic_path})
    return subscriber, subscription


def pull_all(subscriber, subscription, expected, timeout_s=60.0):
    """Pull and acknowledge until ``expected`` distinct ids arrived or the time is up; returns id -> message."""
    pulled = {}
    deadline = time.monotonic() + timeout_s
    while len(pulled) < expected and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": subscription, "max_messages": 1000}, timeout=10)
        if response.received_messages:
            subscriber.acknowledge(
                request={"subscription": subscription, "ack_ids": [m.ack_id for m in response.received_messages]}
            )
        for received in response.received_messages:
            pulled[received.message.attributes["id"]] = received.message
    return pulled


def ensure_topic(project: str, topic_id: str) -> str:
    from my_llm import Publisher

    publisher = Publisher(project, topic_id)
    publisher.ensure_topic()
    publisher.close()
    return publisher.topic_path
