//! Capture quality checks (focus, exposure, valid coverage, hand found, ROI inside the frame).
