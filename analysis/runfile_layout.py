"""Paths and names of the HDF5 run file (see DESIGN.md, "The run file").

The writer (acquisition) and every reader (analysis, GUI) use these constants so the
layout is defined once. Times are seconds since ``/entry/start_time`` (float64).
"""

ENTRY = "/entry"
BINNED = "/entry/binned"                 # NXdata: frames (n,h,w) f32, time, n_frames_in_bin, first_frame_id,
                                         # last_frame_id, partial (bool), voltage, current, capacity_mAh_g
DIFFERENTIAL = "/entry/differential"     # NXdata: frames (n,h,w) f32 (NaN outside mask), time, mask (h,w) u1
RAW = "/entry/raw"                       # NXdata: frames (m,h,w) u16, frame_id, camera_time_ns, host_time
INSTRUMENT = "/entry/instrument"
CAMERA = "/entry/instrument/camera"      # NXdetector: model, serial, exposure_time (ms), frame_rate (Hz),
                                         # pixel_size (nm), pixel_format, frames_in, frames_dropped, ...
LED = "/entry/instrument/led"            # NXsource: wavelength (740 nm), log/time, log/current
FOCUS_LASER = "/entry/instrument/focus_laser"  # NXsource: wavelength (980 nm), log/time, log/power
STAGE = "/entry/instrument/stage"        # NXpositioner logs: time, x, y, z (nm)
FOCUS_LOCK = "/entry/instrument/focus_lock"    # NXcollection: calibration/{slope_px_per_nm, offset_px,
                                               # residual_nm, ...}; log/{time, error_nm, z_nm, state}
ELECTROCHEMISTRY = "/entry/electrochemistry"   # NXcollection: time, voltage, current, capacity_mAh_g, step,
                                               # cycle; techniques/{step, kind, start_time, parameters}
SAMPLE = "/entry/sample"                 # NXsample: name, chemical_formula, active_mass_mg, notes
EVENTS = "/entry/events"                 # time, level, source, message
CONFIG = "/entry/config"                 # dataset: the validated configuration as TOML text
SIMULATION = "/entry/simulation"         # ground truth of a simulated run: time, drift_x_nm, drift_y_nm,
                                         # drift_z_nm, defocus_nm, particle_theta (n, n_particles);
                                         # particles/{x_um, y_um, diameter_um, gamma, eta, rsl_angle_deg}

FOCUS_STATES = ("off", "calibrating", "locking", "locked", "lost", "reacquiring", "fault")
EVENT_LEVELS = ("debug", "info", "warning", "error")
