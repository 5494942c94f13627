"""factory_boy factories for tracker models; members are made through ``member_create``."""

from __future__ import annotations

import factory

from tracker.models import Category, Member
from tracker.services.members import member_create

DEFAULT_PASSWORD = "correct horse battery staple 42"


class MemberFactory(factory.Factory):
    """A member with a passkey, an API token and a ledger. ``MemberFactory(is_staff=True)``."""

    class Meta:
        model = Member

    username = factory.Sequence(lambda n: f"member{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = DEFAULT_PASSWORD
    is_staff = False
    is_superuser = False

    @classmethod
    def _create(cls, model_class: type[Member], **kwargs: object) -> Member:
        return member_create(**kwargs)  # type: ignore[arg-type]


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
