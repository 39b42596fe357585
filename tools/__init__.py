"""Developer tools of transformer-spec that are not part of the installed package."""
