from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.schemas import Health

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", response_model=Health)
def health(services: ServicesDep) -> Health:
    """Whether the service is up, which engine it runs and the gallery it searches."""
    index = services.gallery.current()
    return Health(
        status="ok",
        model_id=services.gallery.model_id,
        templates=index.count,
        index_revision=index.revision,
    )
