"""Ready scenarios. ``gulou-2016``: Gulou District, Nanjing, in 2016, shaped on the seed (鼓楼区
“六化”社区协商; docs/domain.md): 13 sub-districts (街道), 119 communities (社区), a consultation
day each month, 300,000 yuan of 微幸福 funds per community a year.

Four of its numbers are fitted to the seed's published figures by ``calibration.fit`` (the
calibration report names them): proposals per community per month, the mean budget of a measure,
the weight of round tables among offline meetings, and the crowd of residents at a meeting.
Everything else is a modelling choice written here, to be varied in sweeps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from ..errors import InvalidInput
from ..vocabulary import Carrier, Form, MeetingFormat
from .scenario import Funds, People, Scenario, Times, Turnout

__all__ = ["FITTED", "PRESETS", "gulou_2016", "preset"]

#: The parameters ``calibration.fit(gulou_2016(), seed=2016)`` set (proportional passes from hand-set
#: starting values, repeated until they settled),
#: as dotted scenario fields: the calibration report lists them.
FITTED: dict[str, float] = {
    "arrivals.public-benefit": 2.215,
    "arrivals.public-affairs": 0.746,
    "arrivals.difficulties": 0.184,
    "arrivals.disputes": 0.125,
    "arrivals.policy": 0.061,
    "funds.measure_budget": 8864.0,
    "formats.round_table": 5.257,
    "attendance.crowd": 30.61,
}


def gulou_2016() -> Scenario:
    """Gulou District in 2016: 119 communities in 13 sub-districts, a year from 1 January."""
    return Scenario(
        name="gulou-2016",
        communities=119,
        sub_districts=13,
        start=date(2016, 1, 1),
        months=12,
        arrivals={
            "public-benefit": FITTED["arrivals.public-benefit"],  # the seven 微 projects
            "public-affairs": FITTED["arrivals.public-affairs"],
            "difficulties": FITTED["arrivals.difficulties"],
            "disputes": FITTED["arrivals.disputes"],
            "policy": FITTED["arrivals.policy"],
        },
        # the consultation day (协商日) is the standing form; councils and invitations next
        forms={
            Form.CONSULTATION_DAY: 3.0,
            Form.COUNCIL: 2.0,
            Form.INVITATION: 2.0,
            Form.CLOUD: 1.0,
            Form.AGREEMENT_SUPERVISION: 1.0,
        },
        carriers={Carrier.DECISION: 7.0, Carrier.COORDINATION: 1.5, Carrier.HEARING: 0.5, Carrier.ADVISORY: 1.0},
        formats={
            MeetingFormat.ROUND_TABLE: FITTED["formats.round_table"],
            MeetingFormat.HEART_TO_HEART: 1.0,
            MeetingFormat.REVIEW: 0.5,
            MeetingFormat.DELIBERATION: 0.5,
        },
        major=0.1,
        rejected=0.04,
        withdrawn=0.02,
        unlawful=0.02,
        new_problem=0.05,
        resumed=0.6,
        feedback=1,
        people=People(residents=300, representatives=25, council=9, chairs=30),
        attendance=Turnout(invited_min=5, invited_max=9, show_up=0.9, crowd=FITTED["attendance.crowd"]),
        times=Times(notice=4.0, between_rounds=14.0, implementation=45.0),
        funds=Funds(
            yearly_fund=Decimal(300_000),
            measures_min=1,
            measures_max=2,
            measure_budget=Decimal(repr(FITTED["funds.measure_budget"])),
        ),
        # the 11th of each month, as in one of the seed's communities. Every meeting of a consultation-day
        # matter falls on it, so its rounds are a month apart: a decision is due within two consultation
        # days (60 days) rather than the default 30, or every second round would come too late (议而不决)
        parameters={"consultation_day": 11, "decision_deadline": "P60D"},
    )


PRESETS: dict[str, Callable[[], Scenario]] = {"gulou-2016": gulou_2016}


def preset(name: str) -> Scenario:
    """A ready scenario by name (``gulou-2016``)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise InvalidInput(
            f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}", code="unknown_preset"
        ) from None
