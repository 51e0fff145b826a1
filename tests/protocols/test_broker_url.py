"""One broker URL setting: scheme picks TLS and the default port; anything else is refused."""

import pytest

from protocols.broker_url import BrokerAddress, BrokerUrlError, parse_broker_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("mqtt://broker", BrokerAddress("broker", 1883, tls=False), id="mqtt-default"),
        pytest.param("mqtts://broker", BrokerAddress("broker", 8883, tls=True), id="mqtts-default"),
        pytest.param(
            "mqtt://broker:1884", BrokerAddress("broker", 1884, tls=False), id="mqtt-port"
        ),
        pytest.param(
            "mqtts://10.0.0.5:443", BrokerAddress("10.0.0.5", 443, tls=True), id="mqtts-ip"
        ),
        pytest.param(
            "mqtts://broker:1883", BrokerAddress("broker", 1883, tls=True), id="tls-on-1883"
        ),
        pytest.param("mqtt://broker/", BrokerAddress("broker", 1883, tls=False), id="slash"),
        pytest.param("mqtt://[::1]:1884", BrokerAddress("::1", 1884, tls=False), id="ipv6"),
        pytest.param(
            "MQTTS://Broker.Example", BrokerAddress("broker.example", 8883, tls=True), id="case"
        ),
        pytest.param(
            "mqtt://broker:65535", BrokerAddress("broker", 65535, tls=False), id="max-port"
        ),
    ],
)
def test_parses(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("", "must start with", id="empty"),
        pytest.param("broker:1883", "must start with", id="no-scheme"),
        pytest.param("http://broker", "must start with", id="http"),
        pytest.param("ws://broker:9001", "must start with", id="websocket"),
        pytest.param("tcp://broker:1883", "must start with", id="tcp"),
        pytest.param("mqtt://", "names no host", id="no-host"),
        pytest.param("mqtt://:1883", "names no host", id="port-only"),
        pytest.param("mqtt:broker", "names no host", id="no-slashes"),
        pytest.param("mqtt://broker:mqtt", "bad port", id="named-port"),
        pytest.param("mqtt://broker:65536", "bad port", id="port-too-big"),
        pytest.param("mqtt://broker:-1", "bad port", id="negative-port"),
        pytest.param("mqtt://broker:0", "bad port", id="port-zero"),
        pytest.param("mqtt://[::1", "check the host", id="unclosed-ipv6"),
        pytest.param("mqtt://[not-an-ip]:1883", "check the host", id="bracketed-name"),
    ],
)
def test_refuses(url: str, problem: str) -> None:
    with pytest.raises(BrokerUrlError, match=problem):
        parse_broker_url(url)


def test_broker_url_error_is_a_value_error() -> None:
    assert issubclass(BrokerUrlError, ValueError)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        pytest.param("mqtt://broker", "mqtt://broker:1883", id="mqtt"),
        pytest.param("mqtts://broker", "mqtts://broker:8883", id="mqtts"),
        pytest.param("mqtts://broker:9999", "mqtts://broker:9999", id="port"),
        pytest.param("mqtt://[::1]:1884", "mqtt://[::1]:1884", id="ipv6"),
        pytest.param("mqtts://[fe80::1]", "mqtts://[fe80::1]:8883", id="ipv6-default-port"),
    ],
)
def test_url_names_the_address_and_parses_back(url: str, canonical: str) -> None:
    address = parse_broker_url(url)

    assert address.url == canonical
    assert parse_broker_url(address.url) == address
