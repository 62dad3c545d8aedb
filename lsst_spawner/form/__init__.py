"""The spawner's options form and the validation of user options."""
