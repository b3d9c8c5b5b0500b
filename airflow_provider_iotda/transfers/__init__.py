"""Transfer operators: IoTDA data into other systems (``iotda_to_sql``: SQL databases)."""
