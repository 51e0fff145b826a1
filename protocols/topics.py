"""Topic names of the MQTT contract.

Every topic is per device (``sf/v1/d/{device_id}/{channel}``) so the broker's ACL can bind a
certificate to its own subtree ``sf/v1/d/{its CN}/#`` (``provisioning.dynamic_security``). Tenant
and store are never in the topic: the control plane resolves them from its registry, because a
topic is only as trustworthy as the ACL in front of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from protocols.errors import UnknownTopic

PREFIX = "sf/v1/d"
SHARED_INGEST_GROUP = "ingest"

DEVICE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")


class Channel(StrEnum):
    """The channels under a device's subtree; the value is the topic suffix."""

    STATUS = "status"
    JOURNAL = "journal"
    JOURNAL_ACK = "journal/ack"
    STATE = "state"
    TELEMETRY = "telemetry"
    EVENTS = "events"
    CONFIG = "config"
    RELEASE = "release"
    CMD = "cmd"
    CMD_RESULT = "cmd/result"


#: Whose each channel is. An appliance runs two MQTT sessions with one key and two certificates:
#: the register's (CN = device id: the journal and what the replicator says) and the fleet
#: agent's (CN = device id + AGENT_SUFFIX: presence, state, events, commands, configuration,
#: releases). The broker grants each CN exactly its own channels
#: (``provisioning.dynamic_security``); with client ids bound to CNs neither session can
#: replace the other, and neither certificate can act as the other process.
AGENT_SUFFIX = ".agent"
REGISTER_SENDS = frozenset({Channel.JOURNAL, Channel.TELEMETRY})
REGISTER_RECEIVES = frozenset({Channel.JOURNAL_ACK})
AGENT_SENDS = frozenset({Channel.STATUS, Channel.STATE, Channel.EVENTS, Channel.CMD_RESULT})
AGENT_RECEIVES = frozenset({Channel.CMD, Channel.CONFIG, Channel.RELEASE})


def agent_client_id(device_id: str) -> str:
    """The agent's MQTT client id: its certificate's CN, as the broker binds it."""
    return f"{device_id}{AGENT_SUFFIX}"


UPSTREAM = frozenset(
    {
        Channel.STATUS,
        Channel.JOURNAL,
        Channel.STATE,
        Channel.TELEMETRY,
        Channel.EVENTS,
        Channel.CMD_RESULT,
    }
)


@dataclass(frozen=True, slots=True)
class TopicAddress:
    """A parsed topic: whose subtree and which channel."""

    device_id: str
    channel: Channel

    @property
    def topic(self) -> str:
        """The topic string this address names."""
        return device_topic(self.device_id, self.channel)


def validate_device_id(device_id: str) -> str:
    """Return ``device_id`` if it is safe as a topic level and a certificate CN."""
    if not DEVICE_ID_PATTERN.fullmatch(device_id):
        raise UnknownTopic(
            f"device id {device_id!r} must be 3-63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return device_id


def device_topic(device_id: str, channel: Channel) -> str:
    """The topic of ``channel`` in ``device_id``'s subtree."""
    return f"{PREFIX}/{validate_device_id(device_id)}/{channel.value}"


def all_devices_filter(channel: Channel) -> str:
    """Subscription filter for ``channel`` of every device."""
    return f"{PREFIX}/+/{channel.value}"


def shared_filter(channel: Channel, group: str = SHARED_INGEST_GROUP) -> str:
    """A shared subscription, so several control-plane instances split the load."""
    return f"$share/{group}/{all_devices_filter(channel)}"


def parse_topic(topic: str) -> TopicAddress:
    """Parse a topic of the contract, or raise :class:`UnknownTopic`."""
    prefix = PREFIX + "/"
    if not topic.startswith(prefix):
        raise UnknownTopic("not a storefleet v1 device topic", topic=topic)
    device_id, sep, suffix = topic[len(prefix) :].partition("/")
    if not sep:
        raise UnknownTopic("topic names no channel", topic=topic)
    try:
        channel = Channel(suffix)
    except ValueError as err:
        raise UnknownTopic(f"unknown channel {suffix!r}", topic=topic) from err
    if not DEVICE_ID_PATTERN.fullmatch(device_id):
        raise UnknownTopic(f"malformed device id {device_id!r}", topic=topic)
    return TopicAddress(device_id=device_id, channel=channel)
