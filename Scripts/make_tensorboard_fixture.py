#!/usr/bin/env python3
"""TensorBoard event-file fixtures for Tests/OcelliNNTests/TensorBoardTests.swift, made and checked
by the real `tensorboard` package (no TensorFlow needed):

(a) `write`: TensorBoard's own writer (`tensorboard.summary.Writer` over `DirectoryOutput`, i.e.
    `EventFileWriter` + `RecordWriter`) writes SCALARS below into
    Fixtures/tensorboard/events.out.tfevents.tensorboard-writer; the Swift test reads it back with
    Ocelli's reader. (This writer stores a scalar as a DT_FLOAT `TensorProto` with `float_val` and
    "scalars" plugin metadata, not as `simple_value`.)
(b) `read FILE [--json OUT]`: reads an event file with TensorBoard's own readers and prints (or
    writes) what they see as JSON: every record through the TFRecord reader that checks both CRCs
    (`PyRecordReader_New`; a damaged record is an error here, where TensorBoard's loaders would
    only log it and stop), then the scalars through `plugin_event_accumulator.EventAccumulator`,
    the accumulator behind TensorBoard's scalar dashboard (it migrates `simple_value` to tensors,
    and lists the tags the "scalars" plugin shows).

With no arguments it does both for the committed files: writes (a), reads the Swift writer's
fixture Fixtures/tensorboard/events.out.tfevents.fixture into read_back.json and checks that the
scalars are exactly SCALARS, reads (a) back the same way, checks that the fixture is byte for byte
protobuf's own serialization of the same events framed by TensorBoard's `RecordWriter`, and that a
copy of it with one flipped byte is rejected by the CRC check. The Swift writer's fixture itself comes from the Swift
test (`TensorBoardTests.fixtureBytes` writes it when missing), not from this script.

    python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install tensorboard
    /tmp/tbvenv/bin/python Scripts/make_tensorboard_fixture.py          # from the repository root

Made with tensorboard 2.21.0, protobuf 7.36.2, numpy 2.4.6.
"""
import argparse
import io
import json
import os
import pathlib
import shutil
import sys
import tempfile
from unittest import mock

import numpy as np
import tensorboard
from tensorboard.backend.event_processing import event_accumulator as legacy_accumulator
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
from tensorboard.summary import Writer
from tensorboard.summary._output import DirectoryOutput
from tensorboard.summary.writer import event_file_writer
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "OcelliNNTests" / "Fixtures" / "tensorboard"
SWIFT_FIXTURE = OUT / "events.out.tfevents.fixture"
TENSORBOARD_FIXTURE = OUT / "events.out.tfevents.tensorboard-writer"

# The file-version event's wall time, then (wall_time, step, tag, value): the same list as
# `TensorBoardTests.fixtureScalars`. Steps 0 (a proto3 default, left out of the encoding) and past
# 2^32, a zero value, a tiny and the largest float, a non-ASCII tag.
FILE_WALL_TIME = 1700000000.0
SCALARS = [
    (1700000001.5, 0, "epoch_loss", 0.6931472),
    (1700000001.5, 0, "epoch_accuracy", 0.5),
    (1700000002.25, 1, "epoch_loss", 0.4054651),
    (1700000002.25, 1, "epoch_accuracy", 0.875),
    (1700000003.125, 2, "epoch_loss", 0.1),
    (1700000003.125, 2, "epoch_accuracy", 1.0),
    (1700000003.5, 2, "epoch_learning_rate", 0.001),
    (1700000004.0, 9876543210, "batch_loss", -2.5e-8),
    (1700000004.0, 9876543211, "batch_loss", 0.0),
    (1700000005.0, 3, "épreuve/ü", 3.4028235e38),
]


def expected_scalars():
    return [
        {"tag": tag, "step": step, "wall_time": wall, "value": float(np.float32(value))}
        for wall, step, tag, value in SCALARS
    ]


def write_with_tensorboard(path):
    """(a): SCALARS through TensorBoard's own writer, into `path`."""
    with tempfile.TemporaryDirectory() as folder:
        # EventFileWriter stamps its file-version event with time.time(): fixed here so that the
        # committed file is reproducible.
        with mock.patch.object(event_file_writer.time, "time", return_value=FILE_WALL_TIME):
            writer = Writer(DirectoryOutput(folder))
        for wall, step, tag, value in SCALARS:
            writer.add_scalar(tag, value, step, wall_time=wall)
        writer.close()
        (made,) = os.listdir(folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.join(folder, made), path)


def raw_records(path):
    """Every record's bytes through TensorBoard's TFRecord reader (length and data CRCs checked)."""
    reader = PyRecordReader_New(str(path))
    records = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return records
        records.append(reader.record())


def read_with_tensorboard(path):
    """(b): what TensorBoard's readers see in the event file at `path`."""
    records = raw_records(path)
    events = [event_pb2.Event.FromString(r) for r in records]
    first = events[0] if events else None
    stored_as = {"simple_value": 0, "tensor": 0}
    for e in events:
        for v in e.summary.value:
            kind = v.WhichOneof("value")
            if kind in stored_as:
                stored_as[kind] += 1

    # The scalar dashboard's accumulator (size guidance 0: keep every event).
    acc = plugin_event_accumulator.EventAccumulator(str(path), size_guidance={plugin_event_accumulator.TENSORS: 0})
    acc.Reload()
    scalar_tags = sorted(acc.PluginTagToContent("scalars").keys()) if "scalars" in acc.ActivePlugins() else []
    scalars = []
    for tag in scalar_tags:
        for t in acc.Tensors(tag):
            scalars.append({"tag": tag, "step": t.step, "wall_time": t.wall_time,
                            "value": float(tensor_util.make_ndarray(t.tensor_proto).item())})
    # The legacy accumulator's view (simple_value scalars only), for comparison.
    legacy = legacy_accumulator.EventAccumulator(str(path), size_guidance={legacy_accumulator.SCALARS: 0})
    legacy.Reload()

    order = {(s["tag"], s["step"]): i for i, s in enumerate(expected_scalars())}
    scalars.sort(key=lambda s: order.get((s["tag"], s["step"]), len(order)))
    return {
        "file": path.name,
        "reader": f"tensorboard {tensorboard.__version__}: PyRecordReader_New (CRCs checked), "
                  "plugin_event_accumulator.EventAccumulator",
        "records": len(records),
        "file_version": first.file_version if first is not None else None,
        "file_version_wall_time": first.wall_time if first is not None else None,
        "scalar_values_stored_as": stored_as,
        "scalars_plugin_tags": scalar_tags,
        "legacy_accumulator_scalar_tags": sorted(legacy.Tags()["scalars"]),
        "scalars": scalars,
    }


def check(seen, what):
    """The read-back scalars must be exactly SCALARS (tags, steps, wall times, float32 values)."""
    problems = []
    if seen["file_version"] != "brain.Event:2":
        problems.append(f"file_version {seen['file_version']!r}")
    if seen["file_version_wall_time"] != FILE_WALL_TIME:
        problems.append(f"file-version wall time {seen['file_version_wall_time']}")
    if seen["records"] != len(SCALARS) + 1:
        problems.append(f"{seen['records']} records, expected {len(SCALARS) + 1}")
    if seen["scalars"] != expected_scalars():
        problems.append("scalars differ:\n  seen     " + json.dumps(seen["scalars"], ensure_ascii=False)
                        + "\n  expected " + json.dumps(expected_scalars(), ensure_ascii=False))
    if problems:
        sys.exit(f"{what}: TensorBoard's reader disagrees: " + "; ".join(problems))
    print(f"{what}: TensorBoard reads {seen['records']} records, {len(seen['scalars'])} scalars as expected "
          f"(stored as {seen['scalar_values_stored_as']})")


def check_bytes_against_protobuf(path):
    """The Swift writer's file must equal, byte for byte, the same events serialized by protobuf
    itself (`simple_value` scalars) and framed by TensorBoard's `RecordWriter`."""
    out = io.BytesIO()
    writer = RecordWriter(out)
    writer.write(event_pb2.Event(wall_time=FILE_WALL_TIME, file_version="brain.Event:2").SerializeToString())
    for wall, step, tag, value in SCALARS:
        event = event_pb2.Event(wall_time=wall, step=step)
        event.summary.value.add(tag=tag, simple_value=value)
        writer.write(event.SerializeToString())
    if out.getvalue() != path.read_bytes():
        sys.exit(f"{path.name} differs from protobuf's serialization framed by TensorBoard's RecordWriter")
    print(f"{path.name} is byte for byte protobuf's serialization framed by TensorBoard's RecordWriter")


def check_crc_is_verified(path):
    """A copy of `path` with one byte of the first scalar's data flipped must fail the CRC check."""
    data = bytearray(path.read_bytes())
    first_length = int.from_bytes(data[:8], "little")
    data[12 + first_length + 4 + 12 + 3] ^= 0x01  # inside the second record's data
    with tempfile.TemporaryDirectory() as folder:
        damaged = pathlib.Path(folder) / "events.out.tfevents.damaged"
        damaged.write_bytes(bytes(data))
        try:
            raw_records(damaged)
        except errors.DataLossError as e:
            print(f"a flipped byte is caught by TensorBoard's reader: {e.message}")
            return
    sys.exit("a flipped byte was not caught by TensorBoard's CRC check")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    w = sub.add_parser("write", help="(a) write SCALARS with TensorBoard's own writer")
    w.add_argument("out", nargs="?", default=str(TENSORBOARD_FIXTURE))
    r = sub.add_parser("read", help="(b) read an event file with TensorBoard's readers, as JSON")
    r.add_argument("file")
    r.add_argument("--json", help="write the JSON here instead of printing it")
    r.add_argument("--check", action="store_true", help="fail unless the scalars are exactly SCALARS")
    args = parser.parse_args()

    if args.command == "write":
        write_with_tensorboard(pathlib.Path(args.out))
        print(f"wrote {args.out}")
    elif args.command == "read":
        seen = read_with_tensorboard(pathlib.Path(args.file))
        text = json.dumps(seen, indent=1, ensure_ascii=False) + "\n"
        if args.json:
            pathlib.Path(args.json).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        if args.check:
            check(seen, args.file)
    else:
        if not SWIFT_FIXTURE.exists():
            sys.exit(f"{SWIFT_FIXTURE} is missing: run `swift test -c release --filter TensorBoard` once to write it")
        write_with_tensorboard(TENSORBOARD_FIXTURE)
        print(f"wrote {TENSORBOARD_FIXTURE.relative_to(ROOT)}")
        seen = read_with_tensorboard(SWIFT_FIXTURE)
        check(seen, SWIFT_FIXTURE.name)
        (OUT / "read_back.json").write_text(json.dumps(seen, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {(OUT / 'read_back.json').relative_to(ROOT)}")
        check(read_with_tensorboard(TENSORBOARD_FIXTURE), TENSORBOARD_FIXTURE.name)
        check_bytes_against_protobuf(SWIFT_FIXTURE)
        check_crc_is_verified(SWIFT_FIXTURE)


if __name__ == "__main__":
    main()
