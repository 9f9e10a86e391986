# KNIME Python Script node: score molecules with a saved qsarmil model.
#
# Input table 0: a SMILES column (found by name: smiles, canonical_smiles, ... ignoring case).
# Flow variables: model_folder (required), and optionally smiles_column, n_jobs (local worker
#   processes) or scheduler (a Dask scheduler address such as tcp://10.0.0.5:8786; needs
#   pip install qsarmil[dask], and the workers must be able to read model_folder), and
#   interval_level (e.g. 0.8; default the model's 0.9).
# Output table 0: the input table, rows and RowIDs unchanged, plus prediction (proba_<class>
#   for classifiers), status ("ok"/"failed"), error and stripped (counter-ions removed), then
#   prediction_lower/prediction_upper/interval_level/expected_error (regression) or
#   prediction_set/set_size/set_level (classification), the applicability domain with a note
#   in words, in_training_set/training_value and the nearest training molecules.
#   A failed row keeps its cells, with a missing prediction and the reason in error.
import knime.scripting.io as knio

from qsarmil.frames import predict_frame

settings = knio.flow_variables
scored = predict_frame(settings["model_folder"], knio.input_tables[0].to_pandas(),
                       smiles_column=settings.get("smiles_column") or None,
                       n_jobs=int(settings.get("n_jobs") or 1),
                       scheduler=settings.get("scheduler") or None,
                       level=float(settings["interval_level"]) if settings.get("interval_level")
                       else None)
knio.output_tables[0] = knio.Table.from_pandas(scored)
