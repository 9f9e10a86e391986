# KNIME Python Script node: train a qsarmil model.
#
# Input table 0: one molecule per row, a SMILES column (found by name: smiles, canonical_smiles,
#   ... ignoring case) and a target column (numbers, or class labels).
# Flow variables: model_folder (required: where the model is saved; a folder holding an older
#   qsarmil model is replaced, any other non-empty folder is refused), and optionally
#   smiles_column, target_column (default "target"), task ("regression" or "classification";
#   default: detected from the labels).
# Output table 0: one row describing the trained model.
import knime.scripting.io as knio
import pandas as pd

from qsarmil.frames import train_frame

settings = knio.flow_variables
data = knio.input_tables[0].to_pandas()
model = train_frame(data, smiles_column=settings.get("smiles_column") or None,
                    target_column=settings.get("target_column") or "target",
                    task=settings.get("task") or None)
model.save(settings["model_folder"], overwrite=True)

knio.output_tables[0] = knio.Table.from_pandas(pd.DataFrame({
    "model_folder": [str(settings["model_folder"])],
    "task": [model.task_],
    "molecules": [len(data)],
    "not_bagged": [len(model.training_failures_)],
}))
