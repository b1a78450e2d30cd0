"""What people look at: figures of a run and of an experiment (matplotlib), and the HTML and Markdown reports
(Jinja2 templates in ``templates/``). Imports every earlier stage; nothing imports it but the CLI.
"""
