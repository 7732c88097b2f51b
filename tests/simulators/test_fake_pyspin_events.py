"""The call sequences of FLIR's Trigger, BufferHandling, ChunkData, ImageEvents and DeviceEvents examples,
run against the fake PySpin (our own code making the same calls)."""

from __future__ import annotations

import time

import pytest

from operascope.simulators.emulators import fake_pyspin as PySpin  # noqa: N812 - the examples' name
from tests.fakes.flir import SERIAL, assert_sdk_clean, attach


@pytest.fixture
def session():
    """A camera taken from the system and initialised, as every example does; cleaned up as they do."""
    PySpin.reset()
    attach()
    system = PySpin.System.GetInstance()
    cam_list = system.GetCameras()
    cam = cam_list.GetByIndex(0)
    cam.Init()
    handed_out = [cam, cam.GetNodeMap()]
    yield handed_out
    handed_out.clear()  # pytest keeps the yielded value: drop its camera reference before the release
    if cam.IsStreaming():
        cam.EndAcquisition()
    cam.DeInit()
    del cam
    cam_list.Clear()
    system.ReleaseInstance()
    assert_sdk_clean()
    PySpin.reset()


def _select(nodemap, node_name: str, entry_name: str) -> None:
    node = PySpin.CEnumerationPtr(nodemap.GetNode(node_name))
    assert PySpin.IsAvailable(node) and PySpin.IsWritable(node), node_name
    entry = node.GetEntryByName(entry_name)
    assert PySpin.IsAvailable(entry) and PySpin.IsReadable(entry), entry_name
    node.SetIntValue(entry.GetValue())


def _software_trigger(nodemap) -> None:
    command = PySpin.CCommandPtr(nodemap.GetNode("TriggerSoftware"))
    assert PySpin.IsAvailable(command) and PySpin.IsWritable(command)
    command.Execute()


def _configure_software_trigger(nodemap) -> None:
    _select(nodemap, "TriggerMode", "Off")  # source and selector only change with the trigger off
    _select(nodemap, "TriggerSelector", "FrameStart")
    _select(nodemap, "TriggerSource", "Software")
    _select(nodemap, "TriggerMode", "On")


def test_trigger_example_software_trigger(session):
    cam, nodemap = session
    _configure_software_trigger(nodemap)
    assert not PySpin.IsWritable(nodemap.GetNode("TriggerSource"))  # locked while the trigger is on
    _select(nodemap, "AcquisitionMode", "Continuous")
    cam.BeginAcquisition()
    with pytest.raises(PySpin.SpinnakerException) as err:  # no trigger, no frame
        cam.GetNextImage(50)
    assert err.value.errorcode == PySpin.SPINNAKER_ERR_TIMEOUT
    del err
    ids = []
    for _ in range(3):
        _software_trigger(nodemap)
        image = cam.GetNextImage(1000)
        ids.append(image.GetFrameID())
        image.Release()
    assert ids == [0, 1, 2]
    cam.EndAcquisition()
    _select(nodemap, "TriggerMode", "Off")


def test_trigger_example_hardware_line_never_fires_in_the_emulator(session):
    cam, nodemap = session
    _select(nodemap, "TriggerMode", "Off")
    _select(nodemap, "TriggerSource", "Line0")
    _select(nodemap, "TriggerMode", "On")
    assert not PySpin.IsWritable(nodemap.GetNode("TriggerSoftware"))
    cam.BeginAcquisition()
    with pytest.raises(PySpin.SpinnakerException) as err:
        cam.GetNextImage(100)
    assert err.value.errorcode == PySpin.SPINNAKER_ERR_TIMEOUT
    del err
    cam.EndAcquisition()


@pytest.mark.parametrize("mode, expected", [
    ("NewestFirst", [8, 7, 6]), ("NewestOnly", [8]), ("OldestFirstOverwrite", [6, 7, 8]),
    ("OldestFirst", [0, 1, 2, 3, 4, 5, 6, 7, 8]),  # a USB3 camera holds what the 3 buffers cannot take
])
def test_buffer_handling_example_modes(session, mode, expected):
    cam, nodemap = session
    stream = cam.GetTLStreamNodeMap()
    handling = PySpin.CEnumerationPtr(stream.GetNode("StreamBufferHandlingMode"))
    assert PySpin.CEnumEntryPtr(handling.GetCurrentEntry()).GetDisplayName() == "OldestFirst"
    _select(stream, "StreamBufferCountMode", "Manual")
    count = PySpin.CIntegerPtr(stream.GetNode("StreamBufferCountManual"))
    assert count.GetMax() >= 3
    count.SetValue(3)
    _select(nodemap, "AcquisitionMode", "Continuous")
    _configure_software_trigger(nodemap)
    handling.SetIntValue(handling.GetEntryByName(mode).GetValue())
    cam.BeginAcquisition()
    for _ in range(9):
        _software_trigger(nodemap)
        time.sleep(0.03)  # longer than exposure + frame period: every trigger makes a frame
    got = []
    while True:
        try:
            image = cam.GetNextImage(200)
        except PySpin.SpinnakerException as ex:
            assert ex.errorcode == PySpin.SPINNAKER_ERR_TIMEOUT
            break
        got.append(image.GetFrameID())
        image.Release()
    cam.EndAcquisition()
    assert got == expected


def test_chunk_data_example_from_image_and_nodemap(session):
    cam, nodemap = session
    active = PySpin.CBooleanPtr(nodemap.GetNode("ChunkModeActive"))
    assert PySpin.IsAvailable(active) and PySpin.IsWritable(active)
    active.SetValue(True)
    selector = PySpin.CEnumerationPtr(nodemap.GetNode("ChunkSelector"))
    assert PySpin.IsAvailable(selector) and PySpin.IsReadable(selector)
    for entry in [PySpin.CEnumEntryPtr(e) for e in selector.GetEntries()]:
        assert PySpin.IsAvailable(entry) and PySpin.IsReadable(entry)
        selector.SetIntValue(entry.GetValue())
        enable = PySpin.CBooleanPtr(nodemap.GetNode("ChunkEnable"))
        assert PySpin.IsAvailable(enable)
        if enable.GetValue() is not True:
            assert PySpin.IsWritable(enable), entry.GetSymbolic()
            enable.SetValue(True)
    _select(nodemap, "AcquisitionMode", "Continuous")
    cam.BeginAcquisition()
    assert not PySpin.IsWritable(active)  # chunk mode is fixed while streaming
    for _ in range(2):
        image = cam.GetNextImage(1000)
        chunk = image.GetChunkData()
        assert chunk.GetFrameID() == image.GetFrameID()
        assert chunk.GetTimestamp() == image.GetTimeStamp()
        assert (chunk.GetWidth(), chunk.GetHeight()) == (image.GetWidth(), image.GetHeight())
        assert (chunk.GetOffsetX(), chunk.GetOffsetY()) == (0, 0)
        assert chunk.GetExposureTime() == PySpin.CFloatPtr(nodemap.GetNode("ExposureTime")).GetValue()
        assert chunk.GetGain() == 0.0 and chunk.GetSequencerSetActive() == 0
        category = PySpin.CCategoryPtr(nodemap.GetNode("ChunkDataControl"))
        assert PySpin.IsAvailable(category) and PySpin.IsReadable(category)
        shown = {}
        for feature in category.GetFeatures():
            node = PySpin.CNodePtr(feature)
            assert PySpin.IsAvailable(node) and PySpin.IsReadable(node), node.GetDisplayName()
            shown[node.GetDisplayName()] = PySpin.CValuePtr(feature).ToString()
        assert shown["ChunkFrameID"] == str(image.GetFrameID())
        image.Release()
    cam.EndAcquisition()
    for entry in [PySpin.CEnumEntryPtr(e) for e in selector.GetEntries()]:
        selector.SetIntValue(entry.GetValue())
        enable = PySpin.CBooleanPtr(nodemap.GetNode("ChunkEnable"))
        if PySpin.IsWritable(enable):
            enable.SetValue(False)
        else:
            assert entry.GetSymbolic() == "Image"  # the image itself cannot be switched off
    active.SetValue(False)
    cam.BeginAcquisition()
    image = cam.GetNextImage(1000)
    with pytest.raises(PySpin.SpinnakerException):
        image.GetChunkData()
    image.Release()


class _CountingImageHandler(PySpin.ImageEventHandler):
    def __init__(self, cam) -> None:
        super().__init__()
        serial = PySpin.CStringPtr(cam.GetTLDeviceNodeMap().GetNode("DeviceSerialNumber"))
        self.serial = serial.GetValue() if PySpin.IsReadable(serial) else ""
        self.processor = PySpin.ImageProcessor()
        self.processor.SetColorProcessing(PySpin.SPINNAKER_COLOR_PROCESSING_ALGORITHM_HQ_LINEAR)
        self.frame_ids: list[int] = []
        del cam

    def OnImageEvent(self, image) -> None:  # noqa: N802
        if len(self.frame_ids) < 5 and not image.IsIncomplete():
            self.processor.Convert(image, PySpin.PixelFormat_Mono8)
            self.frame_ids.append(image.GetFrameID())


def test_image_events_example_handler_gets_every_image(session):
    cam, nodemap = session
    handler = _CountingImageHandler(cam)
    cam.RegisterEventHandler(handler)
    _select(nodemap, "AcquisitionMode", "Continuous")
    cam.BeginAcquisition()
    deadline = time.monotonic() + 10.0
    while len(handler.frame_ids) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    cam.EndAcquisition()
    assert handler.serial == SERIAL
    # Every delivered image is a new one, in order (a loaded machine may let the stream pool overrun between them).
    assert len(handler.frame_ids) == 5 and handler.frame_ids[0] == 0
    assert all(b > a for a, b in zip(handler.frame_ids, handler.frame_ids[1:]))
    assert PySpin.stream_stats(SERIAL)["outstanding"] == 0  # the SDK released the handler's images
    cam.UnregisterEventHandler(handler)


class _ExposureEndHandler(PySpin.DeviceEventHandler):
    def __init__(self, event_name: str) -> None:
        super().__init__()
        self.event_name = event_name
        self.count = 0
        self.ids: set[int] = set()

    def OnDeviceEvent(self, eventname) -> None:  # noqa: N802
        if eventname == self.event_name:
            self.count += 1
            self.ids.add(self.GetDeviceEventId())
            assert self.GetDeviceEventName() == eventname


@pytest.mark.parametrize("specific", [False, True])
def test_device_events_example_counts_exposure_ends(session, specific):
    cam, nodemap = session
    selector = PySpin.CEnumerationPtr(nodemap.GetNode("EventSelector"))
    assert PySpin.IsAvailable(selector) and PySpin.IsReadable(selector)
    for entry in [PySpin.CEnumEntryPtr(e) for e in selector.GetEntries()]:
        selector.SetIntValue(entry.GetValue())
        notification = PySpin.CEnumerationPtr(nodemap.GetNode("EventNotification"))
        assert PySpin.IsAvailable(notification) and PySpin.IsWritable(notification)
        on = PySpin.CEnumEntryPtr(notification.GetEntryByName("On"))
        notification.SetIntValue(on.GetValue())
    handler = _ExposureEndHandler("EventExposureEnd")
    if specific:
        cam.RegisterEventHandler(handler, "EventExposureEnd")
    else:
        cam.RegisterEventHandler(handler)
    _select(nodemap, "AcquisitionMode", "Continuous")
    cam.BeginAcquisition()
    for _ in range(4):
        image = cam.GetNextImage(1000)
        image.Release()
    cam.EndAcquisition()
    cam.UnregisterEventHandler(handler)
    assert handler.count >= 4 and len(handler.ids) == 1


def test_a_handler_left_registered_blocks_the_release(session):
    cam, _ = session
    handler = _ExposureEndHandler("EventExposureEnd")
    cam.RegisterEventHandler(handler)
    system = PySpin.System.GetInstance()  # the same singleton as the fixture's: 2 references
    system.ReleaseInstance()  # one of two references: fine
    with pytest.raises(PySpin.SpinnakerException) as err:  # the last one, with a handler registered
        system.ReleaseInstance()
    assert err.value.errorcode == PySpin.SPINNAKER_ERR_RESOURCE_IN_USE and "event handler" in str(err.value)
    del err
    assert PySpin.system_reference_count() == 1  # the failed release kept the fixture's reference
    cam.UnregisterEventHandler(handler)
