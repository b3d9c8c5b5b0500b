"""Apache Airflow provider for Huawei Cloud IoTDA instance management.

Import the pieces from their modules (``airflow_provider_iotda.hooks.iotda`` and so on); this
package's ``__init__`` stays empty so that a DAG file importing a sensor pays for nothing else.
"""

__version__ = "0.2.0"
