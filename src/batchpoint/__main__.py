from batchpoint.cli import app

app()
