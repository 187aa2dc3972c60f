import sys
import cellprofiler_core.preferences as prefs
prefs.set_headless()
from cellprofiler_core.pipeline import Pipeline
from cellprofiler_core.modules.images import Images
from cellprofiler_core.modules.metadata import Metadata
from cellprofiler_core.modules.namesandtypes import NamesAndTypes
from cellprofiler_core.modules.groups import Groups
import cellprofiler.modules.identifyprimaryobjects as ipo
import cellprofiler.modules.measureobjectsizeshape as moss
import cellprofiler.modules.exporttospreadsheet as ets
p=Pipeline()
mods=[Images(),Metadata(),NamesAndTypes(),Groups()]
for m in mods: m.set_module_num(len(p.modules())+1); p.add_module(m)
nat=mods[2]
nat.assignment_method.value="All images"
nat.single_image_provider.value="DNA"
# image type default is Grayscale image
a=ipo.IdentifyPrimaryObjects(); a.x_name.value="DNA"; a.y_name.value="Nuclei"
a.size_range.min=5; a.size_range.max=30
m=moss.MeasureObjectSizeShape(); m.objects_list.value="Nuclei"
e=ets.ExportToSpreadsheet(); 
for mod in (a,m,e): mod.set_module_num(len(p.modules())+1); p.add_module(mod)
with open(sys.argv[1],"w") as f: p.dump(f, save_image_plane_details=False)
