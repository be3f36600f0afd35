import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists
