"""What knows Mitsuba: the variant choice, the guiding fix, the tone map and forward-gradient images."""
