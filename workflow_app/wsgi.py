import os

from django.core.wsgi import get_wsgi_application

from workflow_app.database import configure_process

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_app.settings")
configure_process("web")  # before the first connection: the web's time limits
application = get_wsgi_application()
