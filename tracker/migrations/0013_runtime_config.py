from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0012_bonus_points"),
    ]

    operations = [
        migrations.CreateModel(
            name="RuntimeConfig",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("min_ratio", models.FloatField(blank=True, null=True)),
                ("max_peers", models.PositiveIntegerField(blank=True, null=True)),
                ("ratio_grace_bytes", models.BigIntegerField(blank=True, null=True)),
                ("sitewide_freeleech", models.BooleanField(default=False)),
                ("version", models.PositiveIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "run-time configuration",
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("pk", 1)), name="runtime_config_singleton"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("min_ratio__isnull", True),
                            models.Q(("min_ratio__gte", 0), ("min_ratio__lte", 10)),
                            _connector="OR",
                        ),
                        name="runtime_config_min_ratio_range",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("max_peers__isnull", True),
                            models.Q(("max_peers__gte", 1), ("max_peers__lte", 200)),
                            _connector="OR",
                        ),
                        name="runtime_config_max_peers_range",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("ratio_grace_bytes__isnull", True),
                            ("ratio_grace_bytes__gte", 0),
                            _connector="OR",
                        ),
                        name="runtime_config_grace_non_negative",
                    ),
                ],
            },
        ),
    ]
