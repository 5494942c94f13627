# Hit-and-run (docs/hit-and-run.md): the per-snatch state and the member's count and switch.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tracker', '0008_history_leeched_and_clamped'),
    ]

    operations = [
        migrations.AddField(
            model_name='member',
            name='hnr_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='member',
            name='hnr_disabled',
            field=models.BooleanField(default=False),
        ),
        migrations.CreateModel(
            name='HitAndRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('pending', 'Pending'), ('satisfied', 'Satisfied'), ('hit_and_run', 'Hit-and-run'), ('forgiven', 'Forgiven'), ('exempt', 'Exempt')], default='pending', max_length=16)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('forgive_reason', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('forgiven_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('history', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='hit_and_run', to='tracker.torrenthistory')),
                ('member', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='hits_and_runs', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'hit-and-run',
                'indexes': [models.Index(fields=['member', 'state'], name='hnr_member_state'), models.Index(condition=models.Q(('state__in', ['pending', 'hit_and_run'])), fields=['state'], name='hnr_open')],
            },
        ),
    ]
