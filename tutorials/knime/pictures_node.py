# KNIME Python Script node: structure pictures with the fragments coloured.
#
# Input table 0: a SMILES column (found by name: smiles, canonical_smiles, ... ignoring case).
# Flow variables: model_folder (required), and optionally smiles_column, picture_format
#   ("svg", the default, or "png").
# Output table 0: the input table, rows and RowIDs unchanged, plus a picture column: SVG text
#   (turn it into an image column with KNIME's "String to SVG" node) or PNG bytes. Red
#   fragments raise the prediction, blue ones lower it (models with signed contributions);
#   otherwise the colour shows each fragment's weight. Missing where the molecule failed.
import knime.scripting.io as knio

from qsarmil.frames import picture_frame

settings = knio.flow_variables
pictures = picture_frame(settings["model_folder"], knio.input_tables[0].to_pandas(),
                         smiles_column=settings.get("smiles_column") or None,
                         fmt=settings.get("picture_format") or "svg")
knio.output_tables[0] = knio.Table.from_pandas(pictures)
