"""The main window's own parts (app/main_window.py is the window): the menu bar, the run-end notice and first-launch
geometry, the run's commands and the checkpoint commands. They serve the window as a whole, not one tab."""
