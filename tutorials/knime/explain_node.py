# KNIME Python Script node: which fragments drove each prediction.
#
# Input table 0: a SMILES column (found by name: smiles, canonical_smiles, ... ignoring case).
# Flow variables: model_folder (required), and optionally smiles_column, id_column (a column
#   to carry into the output instead of the RowID).
# Output table 0: one row per fragment (conformer, for conformer models) of each molecule:
#   row_id (the input RowID) or the id column, instance, fragment (SMILES), atoms ("3,4,5":
#   the parent atoms), weight, contribution (signed, in target units), baseline (the model's
#   intercept: prediction = baseline + sum of contributions), prediction, status, error.
#   A failed molecule is one row with status "failed". Join it back on row_id, or group by it.
import knime.scripting.io as knio

from qsarmil.frames import explain_frame

settings = knio.flow_variables
table = explain_frame(settings["model_folder"], knio.input_tables[0].to_pandas(),
                      smiles_column=settings.get("smiles_column") or None,
                      id_column=settings.get("id_column") or None)
knio.output_tables[0] = knio.Table.from_pandas(table)
