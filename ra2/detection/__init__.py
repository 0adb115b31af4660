"""Joint detection: the four detectors, joint assignment and the crops cut around the found joints."""
