"""The core app: what every PBTS app shares and no app owns alone."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CoreConfig(AppConfig):
    """Domain errors, the audit log, admin and DRF helpers, page helpers, bulk SQL."""

    default = True  # the app's config; this module also holds the admin's (not the default)
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Site"

    def ready(self) -> None:
        """Register the core section of "Export my data" (``core.mydata``)."""
        from core.mydata import core_section, register_section

        register_section("notifications", core_section)


class AdminSiteConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with :class:`core.admin_site.PBTSAdminSite` as the default site
    (listed in ``INSTALLED_APPS`` in place of ``django.contrib.admin``)."""

    default = False
    default_site = "core.admin_site.PBTSAdminSite"
