"""Every table of the service on one metadata: what the migrations must build, for Alembic and
the test that compares the two."""

from app.accounts import models as accounts
from app.audit import models as audit
from app.console import models as console
from app.core.database import Base
from app.evaluations import models as evaluations
from app.gallery import models as gallery
from app.requests import models as requests
from app.searches import models as searches

DOMAINS = (accounts, audit, console, evaluations, gallery, requests, searches)
metadata = Base.metadata
