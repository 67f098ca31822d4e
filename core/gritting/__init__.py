"""Winter service: whether, when and how much to grit each route (DOMAIN.md sections 1 and 4). Pure."""

from core.gritting.decision import Action, Decision, Wetness
from core.gritting.inputs import PRECIPITATION, Forecast, Precipitation, RouteInput, StationObs, StationSample
from core.gritting.message import format_message, route_ranges
from core.gritting.nowcast import Nowcast, nowcast
from core.gritting.policy import TRANSPORT_SCOTLAND_2010, FrostBand, GrittingPolicy, RatePair, SpreadRate, SpreadType
from core.gritting.routes import decide

__all__ = [
    "PRECIPITATION",
    "TRANSPORT_SCOTLAND_2010",
    "Action",
    "Decision",
    "Forecast",
    "FrostBand",
    "GrittingPolicy",
    "Nowcast",
    "Precipitation",
    "RatePair",
    "RouteInput",
    "SpreadRate",
    "SpreadType",
    "StationObs",
    "StationSample",
    "Wetness",
    "decide",
    "format_message",
    "nowcast",
    "route_ranges",
]
