"""The council as people read it: its name, how tenants reach it, its report-a-repair page, the winter service
policy gritting reasons cite, and the licence of the open data (all from settings; no sign-in: nothing private)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import SettingsDep
from placewatch.settings import Settings

router = APIRouter(tags=["council"])
open_data = APIRouter(prefix="/open-data", tags=["open data"])  # beside the data it licenses, outside /api/v1


class Contact(BaseModel):
    """How a tenant reaches the council (empty strings when not configured)."""

    name: str
    phone: str
    email: str
    repair_url: str = Field(description="the council's report-a-repair page")


class Licence(BaseModel):
    """The licence the open data is published under."""

    name: str
    url: str


class PublishedLicence(Licence):
    """The licence of the open data and who publishes it."""

    publisher: str


class Council(BaseModel):
    """What the pages say about the council."""

    contact: Contact
    winter_policy_name: str
    open_data_licence: Licence


def contact(settings: Settings) -> Contact:
    """The council's contact details from the settings."""
    return Contact(
        name=settings.council_name,
        phone=settings.council_phone,
        email=settings.council_email,
        repair_url=settings.repair_url,
    )


@router.get("/council", response_model=Council, summary="The council's contact, report-a-repair link, policy, licence")
def council(settings: SettingsDep) -> Council:
    """Public: what every page may show about the council."""
    return Council(
        contact=contact(settings),
        winter_policy_name=settings.winter_policy_name,
        open_data_licence=Licence(name=settings.open_data_licence, url=settings.open_data_licence_url),
    )


@open_data.get("/licence.json", response_model=PublishedLicence, summary="The licence the open data is published under")
def licence(settings: SettingsDep) -> PublishedLicence:
    """Public: the licence's name and address, and the publisher (PLACEWATCH_OPEN_DATA_LICENCE, ..._URL)."""
    return PublishedLicence(
        name=settings.open_data_licence, url=settings.open_data_licence_url, publisher=settings.council_name
    )
