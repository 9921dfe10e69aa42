"""Accounts and training records, managed by administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from app.accounts import add_training, create_account, set_active
from app.deps import Caller, SessionDep, require
from app.models import Account
from app.schemas import (
    AccountChange,
    AccountView,
    CreatedAccount,
    NewAccount,
    NewTraining,
    RowId,
    TrainingView,
    problems,
)
from auth import Permission

router = APIRouter(
    prefix="/v1/accounts",
    tags=["accounts"],
    responses=problems(401, 403, 404, 409, 422),
)
Admin = Annotated[Caller, Depends(require(Permission.manage_accounts))]


@router.post("", response_model=CreatedAccount, status_code=201, name="account.create")
def new_account(body: NewAccount, admin: Admin, session: SessionDep) -> CreatedAccount:
    """A person's account (they set up their second factor at first sign-in), or a system's,
    whose client secret is in this response only."""
    with session.begin():
        account, secret = create_account(
            session, body.username, body.role, body.password, admin.actor
        )
        view = CreatedAccount.model_validate(account, from_attributes=True)
        return view.model_copy(update={"client_secret": secret})


@router.get("", response_model=list[AccountView])
def list_accounts(admin: Admin, session: SessionDep) -> list[AccountView]:
    accounts = session.scalars(select(Account).order_by(Account.id))
    return [AccountView.model_validate(a, from_attributes=True) for a in accounts]


@router.patch("/{account_id}", response_model=AccountView, name="account.change")
def change_account(
    account_id: RowId, body: AccountChange, admin: Admin, session: SessionDep
) -> AccountView:
    """Disable (its tokens stop working at once) or enable an account."""
    with session.begin():
        account = set_active(session, account_id, body.active, admin.actor)
        return AccountView.model_validate(account, from_attributes=True)


@router.post(
    "/{account_id}/training", response_model=TrainingView, status_code=201, name="training.add"
)
def new_training(
    account_id: RowId, body: NewTraining, admin: Admin, session: SessionDep
) -> TrainingView:
    with session.begin():
        record = add_training(
            session, account_id, body.course, body.completed_on, body.expires_on, admin.actor
        )
        return TrainingView.model_validate(record, from_attributes=True)
