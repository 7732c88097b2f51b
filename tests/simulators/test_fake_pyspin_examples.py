"""The call sequences of FLIR's Spinnaker Python examples, run against the fake PySpin (our own code, same calls).

One test per example: Acquisition, Enumeration, ImageFormatControl, NodeMapInfo, Exposure_QuickSpin.
Trigger, BufferHandling, ChunkData, ImageEvents and DeviceEvents are in test_fake_pyspin_events.py.
"""

from __future__ import annotations

import pytest

from operascope.simulators.emulators import fake_pyspin as PySpin  # noqa: N812 - the examples' name
from tests.fakes.flir import SERIAL, assert_sdk_clean, attach


@pytest.fixture
def fake():
    PySpin.reset()
    attach()
    yield PySpin
    PySpin.reset()


def _device_information(nodemap) -> dict[str, str]:
    category = PySpin.CCategoryPtr(nodemap.GetNode("DeviceInformation"))
    assert PySpin.IsAvailable(category) and PySpin.IsReadable(category)
    info = {}
    for feature in category.GetFeatures():
        value = PySpin.CValuePtr(feature)
        info[value.GetName()] = value.ToString() if PySpin.IsReadable(value) else "Node not readable"
    return info


def _set_enum(nodemap, node_name: str, entry_name: str) -> None:
    node = PySpin.CEnumerationPtr(nodemap.GetNode(node_name))
    assert PySpin.IsAvailable(node) and PySpin.IsWritable(node)
    entry = node.GetEntryByName(entry_name)
    assert PySpin.IsAvailable(entry) and PySpin.IsReadable(entry)
    node.SetIntValue(entry.GetValue())


def test_acquisition_example_call_sequence(fake, tmp_path):
    system = PySpin.System.GetInstance()
    version = system.GetLibraryVersion()
    assert (version.major, version.minor, version.type, version.build) >= (1, 0, 0, 0)
    cam_list = system.GetCameras()
    assert cam_list.GetSize() == 1
    for cam in cam_list:
        nodemap_tldevice = cam.GetTLDeviceNodeMap()
        assert _device_information(nodemap_tldevice)["DeviceSerialNumber"] == SERIAL
        cam.Init()
        nodemap = cam.GetNodeMap()
        _set_enum(cam.GetTLStreamNodeMap(), "StreamBufferHandlingMode", "NewestOnly")
        _set_enum(nodemap, "AcquisitionMode", "Continuous")
        cam.BeginAcquisition()
        serial = PySpin.CStringPtr(nodemap_tldevice.GetNode("DeviceSerialNumber"))
        assert PySpin.IsAvailable(serial) and PySpin.IsReadable(serial) and serial.GetValue() == SERIAL
        processor = PySpin.ImageProcessor()
        processor.SetColorProcessing(PySpin.SPINNAKER_COLOR_PROCESSING_ALGORITHM_HQ_LINEAR)
        saved = []
        for i in range(3):
            image_result = cam.GetNextImage(1000)
            if image_result.IsIncomplete():
                PySpin.Image_GetImageStatusDescription(image_result.GetImageStatus())
            else:
                width, height = image_result.GetWidth(), image_result.GetHeight()
                image_converted = processor.Convert(image_result, PySpin.PixelFormat_Mono8)
                filename = tmp_path / f"Acquisition-{serial.GetValue()}-{i}.jpg"
                image_converted.Save(str(filename))
                saved.append((filename, width, height))
            image_result.Release()
        cam.EndAcquisition()
        cam.DeInit()
    del cam
    cam_list.Clear()
    system.ReleaseInstance()
    assert len(saved) == 3
    from PIL import Image as PilImage

    for filename, width, height in saved:
        with PilImage.open(filename) as picture:  # a real JPEG of the image's size
            assert picture.format == "JPEG" and picture.size == (width, height)
    assert_sdk_clean()


def test_enumeration_example_call_sequence(fake):
    system = PySpin.System.GetInstance()
    iface_list = system.GetInterfaces()
    assert iface_list.GetSize() >= 1
    cam_list = system.GetCameras()
    assert cam_list.GetSize() == 1
    seen = []
    for iface in iface_list:
        node = iface.TLInterface.InterfaceDisplayName
        assert PySpin.IsAvailable(node) and PySpin.IsReadable(node) and node.GetValue()
        by_map = PySpin.CStringPtr(iface.GetTLNodeMap().GetNode("InterfaceDisplayName"))
        assert by_map.GetValue() == node.GetValue()
        iface.UpdateCameras()
        iface_cams = iface.GetCameras()
        for cam in iface_cams:
            assert cam.TLDevice.DeviceVendorName.GetAccessMode() == PySpin.RO
            assert cam.TLDevice.DeviceModelName.GetAccessMode() == PySpin.RO
            seen.append((cam.TLDevice.DeviceVendorName.ToString(), cam.TLDevice.DeviceModelName.GetValue()))
        del cam
        iface_cams.Clear()
    with pytest.raises(PySpin.SpinnakerException) as err:  # the interface pointer is still held
        system.ReleaseInstance()
    assert err.value.errorcode == PySpin.SPINNAKER_ERR_RESOURCE_IN_USE
    del iface
    cam_list.Clear()
    iface_list.Clear()
    system.ReleaseInstance()
    assert seen == [("FLIR", PySpin.GS3_MODEL)]
    assert_sdk_clean()


def test_image_format_control_example_call_sequence(fake, tmp_path):
    system = PySpin.System.GetInstance()
    cam_list = system.GetCameras()
    cam = cam_list.GetByIndex(0)
    cam.Init()
    nodemap = cam.GetNodeMap()
    pixel_format = PySpin.CEnumerationPtr(nodemap.GetNode("PixelFormat"))
    assert PySpin.IsAvailable(pixel_format) and PySpin.IsWritable(pixel_format)
    mono8 = PySpin.CEnumEntryPtr(pixel_format.GetEntryByName("Mono8"))
    assert PySpin.IsAvailable(mono8) and PySpin.IsReadable(mono8)
    pixel_format.SetIntValue(mono8.GetValue())
    assert pixel_format.GetCurrentEntry().GetSymbolic() == "Mono8"
    for name in ("OffsetX", "OffsetY"):
        offset = PySpin.CIntegerPtr(nodemap.GetNode(name))
        assert PySpin.IsAvailable(offset) and PySpin.IsWritable(offset)
        offset.SetValue(offset.GetMin())
        assert offset.GetValue() == 0
    sizes = []
    for name in ("Width", "Height"):
        size = PySpin.CIntegerPtr(nodemap.GetNode(name))
        assert PySpin.IsAvailable(size) and PySpin.IsWritable(size)
        size.SetValue(size.GetMax())
        sizes.append(size.GetValue())
    assert tuple(sizes[::-1]) == PySpin.GS3_SENSOR_SHAPE
    _set_enum(nodemap, "AcquisitionMode", "Continuous")
    cam.BeginAcquisition()
    image = cam.GetNextImage(1000)
    assert (image.GetWidth(), image.GetHeight()) == tuple(sizes)
    converted = PySpin.ImageProcessor().Convert(image, PySpin.PixelFormat_Mono8)
    converted.Save(str(tmp_path / "ImageFormatControl.pgm"))
    image.Release()
    cam.EndAcquisition()
    cam.DeInit()
    header = (tmp_path / "ImageFormatControl.pgm").read_bytes()[:20]
    assert header.startswith(f"P5\n{sizes[0]} {sizes[1]}\n255\n".encode())
    del cam
    cam_list.Clear()
    system.ReleaseInstance()
    assert_sdk_clean()


def _walk(node, depth: int, out: list[tuple[int, str, str]]) -> None:
    category = PySpin.CCategoryPtr(node)
    out.append((depth, "category", category.GetDisplayName()))
    for feature in category.GetFeatures():
        if not PySpin.IsAvailable(feature) or not PySpin.IsReadable(feature):
            continue
        kind = feature.GetPrincipalInterfaceType()
        assert kind == PySpin.CNodePtr(feature).GetPrincipalInterfaceType()
        if kind == PySpin.intfICategory:
            _walk(feature, depth + 1, out)
        elif kind == PySpin.intfIString:
            out.append((depth + 1, "string", PySpin.CStringPtr(feature).GetValue()))
        elif kind == PySpin.intfIInteger:
            out.append((depth + 1, "integer", str(PySpin.CIntegerPtr(feature).GetValue())))
        elif kind == PySpin.intfIFloat:
            out.append((depth + 1, "float", str(PySpin.CFloatPtr(feature).GetValue())))
        elif kind == PySpin.intfIBoolean:
            out.append((depth + 1, "boolean", str(PySpin.CBooleanPtr(feature).GetValue())))
        elif kind == PySpin.intfICommand:
            command = PySpin.CCommandPtr(feature)
            out.append((depth + 1, "command", f"{command.GetDisplayName()}: {command.GetToolTip()}"))
        elif kind == PySpin.intfIEnumeration:
            enumeration = PySpin.CEnumerationPtr(feature)
            entry = PySpin.CEnumEntryPtr(enumeration.GetCurrentEntry())
            out.append((depth + 1, "enumeration", f"{enumeration.GetDisplayName()}={entry.GetSymbolic()}"))
        else:
            value = PySpin.CValuePtr(feature)
            out.append((depth + 1, "value", f"{value.GetName()}={value.ToString()}"))


def test_nodemapinfo_example_walks_every_map(fake):
    system = PySpin.System.GetInstance()
    cam_list = system.GetCameras()
    cam = cam_list[0]
    tl_device, tl_stream = [], []
    _walk(cam.GetTLDeviceNodeMap().GetNode("Root"), 0, tl_device)
    _walk(cam.GetTLStreamNodeMap().GetNode("Root"), 0, tl_stream)
    cam.Init()
    genicam = []
    _walk(cam.GetNodeMap().GetNode("Root"), 0, genicam)
    cam.DeInit()
    system_map = []
    _walk(system.GetTLNodeMap().GetNode("Root"), 0, system_map)
    assert (2, "string", SERIAL) in tl_device
    assert (2, "enumeration", "StreamBufferHandlingMode=OldestFirst") in tl_stream
    kinds = {kind for _, kind, _ in genicam}
    assert {"category", "integer", "float", "boolean", "command", "enumeration", "string"} <= kinds
    assert (2, "enumeration", "PixelFormat=Mono8") in genicam
    assert any(kind == "string" for _, kind, _ in system_map)
    del cam
    cam_list.Clear()
    system.ReleaseInstance()
    assert_sdk_clean()


def test_exposure_quickspin_example_call_sequence(fake):
    system = PySpin.System.GetInstance()
    cam_list = system.GetCameras()
    cam = cam_list[0]
    cam.Init()
    assert _device_information(cam.GetTLDeviceNodeMap())["DeviceModelName"] == PySpin.GS3_MODEL
    assert cam.ExposureAuto.GetAccessMode() == PySpin.RW
    assert cam.ExposureTime.GetAccessMode() == PySpin.RO  # auto exposure owns the value
    cam.ExposureAuto.SetValue(PySpin.ExposureAuto_Off)
    assert cam.ExposureTime.GetAccessMode() == PySpin.RW
    wanted_us = min(cam.ExposureTime.GetMax(), 2_000_000.0)
    cam.ExposureTime.SetValue(wanted_us)
    assert cam.ExposureTime.GetValue() == pytest.approx(wanted_us)
    assert cam.AcquisitionMode.GetAccessMode() == PySpin.RW
    cam.AcquisitionMode.SetValue(PySpin.AcquisitionMode_Continuous)
    cam.TLStream.StreamBufferHandlingMode.SetValue(PySpin.StreamBufferHandlingMode_NewestOnly)
    cam.BeginAcquisition()
    assert cam.TLDevice.DeviceSerialNumber.GetAccessMode() == PySpin.RO
    assert cam.TLDevice.DeviceSerialNumber.GetValue() == SERIAL
    for _ in range(2):
        image = cam.GetNextImage(1000)
        assert not image.IsIncomplete()
        PySpin.ImageProcessor().Convert(image, PySpin.PixelFormat_Mono8)
        image.Release()
    cam.EndAcquisition()
    cam.ExposureAuto.SetValue(PySpin.ExposureAuto_Continuous)
    assert cam.ExposureAuto.GetValue() == PySpin.ExposureAuto_Continuous
    cam.DeInit()
    assert cam.ExposureAuto.GetAccessMode() == PySpin.NI  # not initialised: GenICam nodes unreachable
    with pytest.raises(PySpin.SpinnakerException) as err:
        cam.ExposureTime.GetValue()
    assert err.value.errorcode == PySpin.SPINNAKER_ERR_NOT_INITIALIZED
    del cam, err
    cam_list.Clear()
    system.ReleaseInstance()
    assert_sdk_clean()


def test_release_without_deinit_is_accepted_once_no_reference_is_held(fake):
    system = PySpin.System.GetInstance()
    cam_list = system.GetCameras()
    cam = cam_list[0]
    cam.Init()
    with pytest.raises(PySpin.SpinnakerException) as err:  # a CameraPtr is alive: -1004, as the SDK
        system.ReleaseInstance()
    assert err.value.errorcode == PySpin.SPINNAKER_ERR_RESOURCE_IN_USE
    assert "still holds a reference" in str(err.value)
    del cam
    cam_list.Clear()
    system.ReleaseInstance()  # no DeInit: accepted, the release de-initialises the camera
    assert PySpin.initialised_serials() == []


def test_deinit_while_streaming_is_refused_like_the_sdk(fake):
    system = PySpin.System.GetInstance()
    cam_list = system.GetCameras()
    cam = cam_list[0]
    cam.Init()
    cam.BeginAcquisition()
    with pytest.raises(PySpin.SpinnakerException) as err:
        cam.DeInit()
    assert err.value.errorcode == PySpin.SPINNAKER_ERR_RESOURCE_IN_USE
    cam.EndAcquisition()
    cam.DeInit()
    del cam, err  # the exception's traceback references the camera too
    cam_list.Clear()
    system.ReleaseInstance()
