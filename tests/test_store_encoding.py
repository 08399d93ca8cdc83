"""Stores write records with an encoder that reuses the JSON of unchanged sub-records; what it
writes must read back as the very record."""

from __future__ import annotations

import consultflow as cf
from consultflow.demo import demo_engine, run_story
from consultflow.storage import RecordEncoder


class _Recording(cf.MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[cf.Consultation] = []

    def append(self, step: cf.Step, expected_version: int) -> None:
        self.records.append(step.record)
        super().append(step, expected_version)


def test_every_record_of_the_reference_story_reads_back_equal() -> None:
    store = _Recording()
    engine, clock = demo_engine(store)
    run_story(engine, clock)
    encoder = RecordEncoder()
    assert len(store.records) == 64  # one record per step of the story
    for record in store.records:
        text = encoder.encode(record)
        assert cf.Consultation.model_validate_json(text) == record
        assert cf.Consultation.model_validate_json(text) == cf.Consultation.model_validate_json(
            record.model_dump_json()
        )


def test_a_full_encoder_forgets_the_oldest_and_stays_right() -> None:
    store = _Recording()
    engine, clock = demo_engine(store)
    run_story(engine, clock)
    encoder = RecordEncoder(size=1)
    other = store.records[5].model_copy(update={"id": "another-one"})
    for record in store.records:
        assert cf.Consultation.model_validate_json(encoder.encode(other)) == other
        assert cf.Consultation.model_validate_json(encoder.encode(record)) == record


def test_size_zero_means_plain_serialisation() -> None:
    store = _Recording()
    engine, clock = demo_engine(store)
    run_story(engine, clock)
    last = store.records[-1]
    assert RecordEncoder(size=0).encode(last) == last.model_dump_json()
