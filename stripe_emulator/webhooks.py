"""Events API, webhook endpoints and signed webhook delivery. (placeholder)"""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/v1")
