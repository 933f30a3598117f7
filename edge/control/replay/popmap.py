"""Which of the stack's POPs replays a logged request: from the edge location code (``IAD89-C1``, ``FRA56-P5``).

CloudFront names an edge location by "a three-letter code and an arbitrarily assigned number ... The three-letter
code typically corresponds with the International Air Transport Association (IATA) airport code for an airport near
the edge location's geographic location" ("Standard logging reference", x-edge-location,
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html#BasicDistributionFileFormat).

Default map: the airport's continent (:data:`CONTINENTS`, the airports of CloudFront's edge locations as AWS lists
them on https://aws.amazon.com/cloudfront/features/#Global_Edge_Network) to the nearest of the stack's default
POPs: the Americas -> IAD, Europe, Africa and the Middle East -> FRA, Asia and Oceania -> NRT. A code that is
itself a POP's name goes to that POP; an unknown code, or a continent whose POP the stack lacks, goes to IAD (or
the stack's first POP). ``--pop-map FILE`` (JSON or TOML, ``{"LHR": "FRA", "*": "IAD"}``) overrides: the longest
key that prefixes the location wins, ``*`` is the fallback.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

__all__ = ["CONTINENTS", "NEAREST_POP", "PopMap", "load_pop_map"]

_AMERICAS = ("IAD ATL BOS ORD DFW DEN DTW HIO IAH IND JAX MCI LAX MIA MSP EWR JFK PHL PHX PDX PIT SLC SFO SEA SJC "
             "TPA BNA CMH CLT MSY LAS SAN OKC OMA HNL ANC SAT AUS RDU BUF YUL YTO YVR YYC YEG YOW QRO MEX GDL MTY "
             "GRU GIG EZE SCL BOG LIM FOR POA CWB UIO PTY SJO")
_EUROPE = ("FRA LHR MAN DUB AMS CDG MRS MXP FCO MAD BCN LIS ARN CPH OSL HEL WAW PRG VIE ZRH BRU MUC HAM DUS TXL "
           "BER ATH BUD SOF OTP ZAG PMO LYS EDI BRS LCY TLL RIX VNO KBP IST BEG LJU PRN DME LED "
           "JNB CPT NBO LOS CAI ACC CMN KGL "  # Africa
           "DXB FJR BAH TLV DOH JED RUH KWI MCT")  # Middle East
_ASIA = ("NRT KIX HND ICN HKG SIN TPE BOM DEL MAA BLR HYD CCU KUL BKK MNL CGK SGN HAN PEK PVG SZX ZHY CTU HGH "
         "NGO FUK CMB DAC KHI LHE ISB PNH RGN "
         "SYD MEL BNE PER AKL ADL CBR")  # Oceania
CONTINENTS: Mapping[str, str] = {code: continent for continent, codes in
                                 (("americas", _AMERICAS), ("europe", _EUROPE), ("asia", _ASIA))
                                 for code in codes.split()}
NEAREST_POP = {"americas": "IAD", "europe": "FRA", "asia": "NRT"}
FALLBACK = "IAD"


@dataclass(frozen=True, slots=True)
class PopMap:
    """Edge location -> POP name for a stack with ``pops``; ``overrides`` from ``--pop-map``."""

    pops: tuple[str, ...]
    overrides: tuple[tuple[str, str], ...] = ()  # (prefix, POP), longest prefix first
    fallback: str | None = None  # "*" of --pop-map: where unknown codes go

    def pop_for(self, location: str) -> str:
        code = location.upper()
        for prefix, pop in self.overrides:
            if code.startswith(prefix):
                return pop
        airport = code[:3]
        if airport in self.pops:
            return airport
        continent = CONTINENTS.get(airport)
        if continent is not None and NEAREST_POP[continent] in self.pops:
            return NEAREST_POP[continent]
        if self.fallback is not None:
            return self.fallback
        return FALLBACK if FALLBACK in self.pops else self.pops[0]

    def describe(self, locations: Sequence[str]) -> dict[str, str]:
        """Airport code -> POP for the locations seen (for the report)."""
        return {loc[:3].upper(): self.pop_for(loc) for loc in sorted(set(locations)) if loc}


def load_pop_map(path: str | Path | None, pops: Sequence[str]) -> PopMap:
    """The default map for ``pops``, with ``path``'s overrides. Raises ValueError naming the problem."""
    if not pops:
        raise ValueError("the stack has no POPs to replay to")
    if path is None:
        return PopMap(tuple(pops))
    p = Path(path)
    try:
        raw = p.read_bytes()
        data = tomllib.loads(raw.decode()) if p.suffix == ".toml" else orjson.loads(raw)
    except OSError as exc:
        raise ValueError(f"--pop-map {p}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--pop-map {p}: not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--pop-map {p}: expected an object of edge location prefix -> POP name")
    overrides = []
    fallback = None
    for prefix, pop in data.items():
        if not isinstance(pop, str) or pop not in pops:
            raise ValueError(f"--pop-map {p}: {prefix!r} -> {pop!r}: not one of the stack's POPs "
                             f"({', '.join(pops)})")
        if prefix == "*":
            fallback = pop
        else:
            overrides.append((str(prefix).upper(), pop))
    overrides.sort(key=lambda kv: -len(kv[0]))
    return PopMap(tuple(pops), tuple(overrides), fallback)
