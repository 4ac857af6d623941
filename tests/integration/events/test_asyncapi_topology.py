"""/asyncapi.json's AMQP bindings against the real RabbitMQ: re-declaring what the document
states over what `declare_topology` declared is accepted (RabbitMQ refuses a declaration
whose type, durability or arguments differ: 406 PRECONDITION_FAILED)."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from common.amqp import declare_topology
from common.settings import Settings
from edge_api.asyncapi import default_document
from tests.integration.events.broker import unique_topology

pytestmark = [pytest.mark.rabbitmq]


def test_the_document_states_the_declared_topology(rabbitmq):
    topology = unique_topology(rabbitmq)
    document = default_document(
        Settings(
            environment="test",
            amqp_url=rabbitmq.url,
            events_exchange=topology.exchange,
            notify_queue=topology.queue,
            notify_delivery_limit=4,
        )
    )
    queue = document["channels"][topology.queue]["bindings"]["amqp"]
    dead = document["channels"][topology.dead_queue]["bindings"]["amqp"]
    exchange = document["channels"]["task.assigned"]["bindings"]["amqp"]["exchange"]
    with pika.BlockingConnection(pika.URLParameters(rabbitmq.url)) as connection:
        channel = connection.channel()
        declare_topology(channel, exchange=topology.exchange, queue=topology.queue, delivery_limit=4)

        channel.exchange_declare(
            exchange["name"],
            exchange_type=exchange["type"],
            durable=exchange["durable"],
            auto_delete=exchange["autoDelete"],
        )
        channel.exchange_declare(
            dead["x-binding"]["exchange"], exchange_type=dead["x-binding"]["exchangeType"], durable=True
        )
        for binding in (queue, dead):
            channel.queue_declare(
                binding["queue"]["name"],
                durable=binding["queue"]["durable"],
                exclusive=binding["queue"]["exclusive"],
                auto_delete=binding["queue"]["autoDelete"],
                arguments=binding["x-arguments"],
            )

        # A negative control: a document that said another delivery limit would be refused.
        wrong = {**queue["x-arguments"], "x-delivery-limit": 5}
        with pytest.raises(ChannelClosedByBroker) as refused:
            channel.queue_declare(topology.queue, durable=True, arguments=wrong)
        assert refused.value.reply_code == 406
