"""Regional coordination: diversion, surge levels, resource sharing and alerts.

The rules are pure modules (state, config, rules, diversion, surge, matching, alerts_rules,
region) that know nothing of Django; the Django layer (models, services, selectors, tasks,
apis) reads live state through ``inputs`` and records what the rules decide.
"""
