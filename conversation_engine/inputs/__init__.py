"""What a run is given: prompt specs (`specs`) and scenarios with their variables (`scenario`)."""
