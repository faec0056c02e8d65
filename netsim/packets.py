"""How a TCP byte stream crosses ``mm-link``: segments of at most one MSS, each with its headers on the link.

``mm-link`` reads IP packets from a TUN device opened without ``IFF_NO_PI``, so each packet it queues is a
4-byte TUN header + the IP packet; one delivery opportunity carries 1504 bytes = 4 + a 1500-byte IP packet.
On Linux a TCP connection with timestamps (the default) sends 1448 payload bytes per full segment behind
20 bytes of IP and 32 of TCP header. So a saturated link carries 1448 application bytes per opportunity,
not 1504 (measured against a real ``mm-link`` in shared/data/mahimahi-reference: 0.963 of the trace's
capacity), and a 100-byte message costs 156 bytes of link.
"""

from __future__ import annotations

from dataclasses import dataclass

from splitinf.netsim.schedule import PACKET_SIZE


@dataclass(frozen=True)
class Packetization:
    mtu: int = 1500  # IP packet size limit of mm-link's TUN device
    ip_tcp_header: int = 52  # 20 IP + 32 TCP with timestamps (40 without); 28 for UDP
    tun_header: int = 4  # mm-link's TUN packet information; 0 for a device opened with IFF_NO_PI

    def __post_init__(self) -> None:
        if self.ip_tcp_header < 0 or self.tun_header < 0:
            raise ValueError(f"header sizes must be >= 0 bytes, got IP/TCP {self.ip_tcp_header}, "
                             f"TUN {self.tun_header}")
        if not self.ip_tcp_header < self.mtu:
            raise ValueError(f"the MTU ({self.mtu} B) must exceed the IP/TCP header ({self.ip_tcp_header} B)")
        if self.mtu + self.tun_header > PACKET_SIZE:
            raise ValueError(f"MTU + TUN header must fit one delivery opportunity of {PACKET_SIZE} B, "
                             f"got {self.mtu} + {self.tun_header}")

    @property
    def mss(self) -> int:
        """Payload bytes of a full segment."""
        return self.mtu - self.ip_tcp_header

    @property
    def overhead(self) -> int:
        """Link bytes each packet carries besides its payload."""
        return self.ip_tcp_header + self.tun_header

    def wire_size(self, payload: int) -> int:
        """Link bytes of one segment carrying ``payload`` bytes (1..MSS)."""
        if not 0 < payload <= self.mss:
            raise ValueError(f"a segment carries 1..{self.mss} payload bytes, got {payload}")
        return payload + self.overhead

    def segments(self, size: int) -> list[int]:
        """Payload sizes of the segments a ``size``-byte message is cut into (full ones, then the rest)."""
        full, rest = divmod(size, self.mss)
        return [self.mss] * full + ([rest] if rest else [])

    def payload_share(self) -> float:
        """Application bytes per link byte when every segment is full (1448 / 1504 by default)."""
        return self.mss / (self.mss + self.overhead)

    def describe(self) -> str:
        return f"MSS {self.mss} B + {self.overhead} B of headers per packet"
